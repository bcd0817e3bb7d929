//! The store suite: every case is written once against `Arc<dyn Store>` and run on both backends, each run on a
//! fresh database of its own (SQLite in a temporary directory, PostgreSQL from `tessera_testkit`).

use sqlx::Connection;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tessera_core::audit::{ChainVerifier, Event, GENESIS_HASH, NewEvent, Outcome};
use tessera_core::chat::{
    ChatEvent, ChatEventKind, Member, MessageContent, MessageType, NewMessage, Participant, Thread, ThreadId,
};
use tessera_core::face::{
    Detection, GroupId, LargeFaceList, LargePersonGroup, ListFace, PersistedFace, Person, Training,
};
use tessera_core::identity::{Identity, IdentityId, IdentityKind, IdentityName};
use tessera_core::secret::KeyHash;
use tessera_core::session::{EndReason, Session};
use tessera_core::{Account, FeatureFlag, FlagSet, IsvGrant, KeyGenerations, KeySlot, ResourceId, Timestamp};
use tessera_store::audit::AuditWriter;
use tessera_store::{
    AccountChange, AuditQuery, MAX_AUDIT_PAGE, NewKey, SealedAccessKey, Store, StoreError, ThreadChange,
};
use tessera_token::{KeyState, MasterKey, Rotation, StoredKey};
use uuid::Uuid;

/// Runs raw SQL on a new connection to the database at a URL; returns the rows affected.
type RawExec = fn(String, &'static str) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send>>;

/// A fresh database and a store opened on it.
struct Db {
    store: Arc<dyn Store>,
    url: String,
    raw: RawExec,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn new(url: String, raw: RawExec, dir: Option<tempfile::TempDir>) -> Self {
        let store = tessera_store::open(&url).await.expect("open the store");
        Self {
            store,
            url,
            raw,
            _dir: dir,
        }
    }

    /// Another store on the same database, as a second node would open it. A SQLite database serves one
    /// process (its file is locked, see `sqlite_is_served_by_one_process`), so there it is the same store.
    async fn open_another(&self) -> Arc<dyn Store> {
        if self.url.starts_with("sqlite:") {
            return self.store.clone();
        }
        tessera_store::open(&self.url).await.expect("open a second store")
    }

    /// Runs `sql` outside the store, on its own connection.
    async fn raw(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        (self.raw)(self.url.clone(), sql).await
    }
}

async fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = tessera_testkit::sqlite_url(dir.path());
    Db::new(
        url,
        |url, sql| {
            Box::pin(async move {
                let mut conn = sqlx::SqliteConnection::connect(&url).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            })
        },
        Some(dir),
    )
    .await
}

async fn postgres_db() -> Db {
    let url = tokio::task::spawn_blocking(tessera_testkit::postgres_url)
        .await
        .expect("create a PostgreSQL test database");
    Db::new(
        url,
        |url, sql| {
            Box::pin(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            })
        },
        None,
    )
    .await
}

/// Generates `sqlite::<case>` and `postgres::<case>` tests for each case.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sqlite_db().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::postgres_db().await).await;
                }
            )*
        }
    };
}

suite!(
    accounts_round_trip,
    duplicates_conflict_and_roll_back,
    list_accounts_pages_in_resource_id_order,
    account_changes_apply_and_read_back,
    set_account_key_replaces_the_old_key,
    settings_are_inserted_only_if_absent,
    signing_keys_bootstrap_only_once,
    rotation_promotes_retires_and_publishes,
    only_retired_signing_keys_are_removed,
    audit_appends_chain_across_batches,
    audit_queries_filter_and_page,
    audit_table_is_append_only,
    audit_writer_serves_concurrent_callers,
    two_stores_append_to_one_chain,
    identities_live_revoke_and_die,
    identity_names_are_unique_among_live_identities,
    identities_list_in_id_order,
    sealed_access_keys_of_enabled_communication_accounts,
    refresh_sessions_advance_once_per_generation,
    person_groups_and_persons_belong_to_one_account,
    face_templates_expire_enrol_and_cascade,
    training_freezes_enrolments_and_counts_removals,
    face_lists_belong_to_one_account,
    list_faces_page_and_cascade,
    chat_threads_create_once_and_list_by_activity,
    chat_posts_number_messages_and_apply_changes,
    chat_admissions_are_kept_and_the_thread_cap_holds,
    chat_messages_edit_delete_page_and_receipts,
    chat_changes_append_their_events,
    chat_events_are_read_by_audience,
    audit_checkpoints_are_kept_once_per_head,
);

// ---- fixtures ----

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const SUB: &str = "8f3c2d1e-0000-4000-8000-0000000000aa";

fn face_id(group: &str, name: &str) -> ResourceId {
    ResourceId::parse(&format!(
        "/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/{name}"
    ))
    .expect("valid resource id")
}

fn comm_id(group: &str, name: &str) -> ResourceId {
    ResourceId::parse(&format!(
        "/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Communication/communicationServices/{name}"
    ))
    .expect("valid resource id")
}

fn account(resource_id: ResourceId) -> Account {
    Account {
        id: Uuid::new_v4(),
        resource_id,
        approved_flags: FlagSet::EMPTY,
        isv: None,
        disabled: false,
        tokens_revoked_at: None,
        isv_tokens_revoked_at: None,
        user_tokens_revoked_at: None,
        key_generations: KeyGenerations::default(),
        created_at: T0,
    }
}

fn key(slot: KeySlot, secret: &str) -> NewKey {
    NewKey {
        slot,
        hash: KeyHash::of(secret),
        sealed: None,
    }
}

fn keys(prefix: &str) -> Vec<NewKey> {
    vec![
        key(KeySlot::Key1, &format!("{prefix}-key1")),
        key(KeySlot::Key2, &format!("{prefix}-key2")),
    ]
}

fn flags(list: &[FeatureFlag]) -> FlagSet {
    list.iter().copied().collect()
}

fn event(at: i64, actor: &str, action: &str, subject: &str, outcome: Outcome, isv: Option<&str>) -> NewEvent {
    NewEvent {
        at: Timestamp::from_millis(at),
        actor: actor.into(),
        action: action.into(),
        subject: subject.into(),
        outcome,
        details: format!(r#"{{"subject":"{subject}","n":{at}}}"#),
        isv: isv.map(Into::into),
    }
}

fn simple_event(n: i64) -> NewEvent {
    event(n, "admin", "admin.test", &format!("s{n}"), Outcome::Success, None)
}

fn master() -> MasterKey {
    MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap()
}

fn by_kid(mut keys: Vec<StoredKey>) -> Vec<StoredKey> {
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    keys
}

fn all_events() -> AuditQuery {
    AuditQuery {
        limit: MAX_AUDIT_PAGE,
        ..AuditQuery::default()
    }
}

/// Reads the whole audit log, page by page, and checks the chain; returns it.
async fn verified_log(store: &dyn Store) -> Vec<Event> {
    let mut log = Vec::new();
    let mut verifier = ChainVerifier::default();
    loop {
        let page = store
            .audit_events(&AuditQuery {
                after_seq: log.last().map_or(0, |e: &Event| e.seq),
                ..all_events()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return log;
        }
        for e in &page {
            verifier.push(e).unwrap_or_else(|broken| panic!("{broken}"));
        }
        log.extend(page);
    }
}

fn seqs(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

fn gid(id: &str) -> GroupId {
    GroupId::parse(id).unwrap()
}

fn new_group(acct: &Account, id: &str) -> LargePersonGroup {
    LargePersonGroup {
        account: acct.id,
        id: gid(id),
        name: format!("group {id}"),
        user_data: Some("ud".into()),
        recognition_model: "recognition_04".into(),
        created_at: T0,
        training: Training::default(),
    }
}

fn new_person(n: u128, acct: &Account, group: &str) -> Person {
    Person {
        id: Uuid::from_u128(n),
        account: acct.id,
        group: gid(group),
        name: format!("p{n}"),
        user_data: None,
        created_at: T0,
        persisted_face_ids: vec![],
    }
}

/// A face template, distinct per seed.
fn template(seed: f32) -> Vec<f32> {
    (0..128).map(|i| seed + i as f32 * 1e-3).collect()
}

/// Face `id` of `person`, enrolled in `acct`'s `group`, with template `template(id)`.
fn new_face(id: u128, person: u128, acct: &Account, group: &str) -> PersistedFace {
    PersistedFace {
        id: Uuid::from_u128(id),
        account: acct.id,
        group: gid(group),
        person: Uuid::from_u128(person),
        template: template(id as f32),
        user_data: Some("ud".into()),
        created_at: T0,
    }
}

fn new_face_list(acct: &Account, id: &str) -> LargeFaceList {
    LargeFaceList {
        account: acct.id,
        id: gid(id),
        name: format!("list {id}"),
        user_data: Some("ud".into()),
        recognition_model: "recognition_04".into(),
        created_at: T0,
        trained_at: None,
    }
}

/// Face `id` of `acct`'s `list`, with template `template(id)`.
fn new_list_face(id: u128, acct: &Account, list: &str) -> ListFace {
    ListFace {
        id: Uuid::from_u128(id),
        account: acct.id,
        list: gid(list),
        template: template(id as f32),
        user_data: Some(format!("ud{id}")),
        created_at: T0,
    }
}

// ---- accounts ----

async fn accounts_round_trip(db: Db) {
    let store = &db.store;
    store.ping().await.unwrap();
    let mut face = account(face_id("rg", "face1"));
    face.approved_flags = flags(&[
        FeatureFlag::FaceIdentification,
        FeatureFlag::LimitedAccessHighRisk,
    ]);
    face.isv = Some(IsvGrant {
        flags: flags(&[FeatureFlag::FaceIdentification]),
        cut_off_at: None,
    });
    let mut comm = account(comm_id("rg", "chat1"));
    comm.disabled = true;
    comm.created_at = T0.plus_secs(5);
    store.create_account(&face, &keys("face"), T0).await.unwrap();
    store.create_account(&comm, &keys("comm"), T0).await.unwrap();

    assert_eq!(
        store.account(&face.resource_id).await.unwrap(),
        Some(face.clone())
    );
    assert_eq!(
        store.account(&comm.resource_id).await.unwrap(),
        Some(comm.clone())
    );
    assert_eq!(store.account(&face_id("rg", "missing")).await.unwrap(), None);

    assert_eq!(
        store.account_by_key(&KeyHash::of("face-key1")).await.unwrap(),
        Some((face.clone(), KeySlot::Key1))
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("face-key2")).await.unwrap(),
        Some((face.clone(), KeySlot::Key2))
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("comm-key2")).await.unwrap(),
        Some((comm.clone(), KeySlot::Key2))
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("no-such-key")).await.unwrap(),
        None
    );
}

async fn duplicates_conflict_and_roll_back(db: Db) {
    let store = &db.store;
    let first = account(face_id("rg", "face1"));
    store.create_account(&first, &keys("first"), T0).await.unwrap();

    // Same resource id, different GUID and keys: refused, and none of its keys were stored.
    let same_id = account(face_id("rg", "face1"));
    let err = store
        .create_account(&same_id, &keys("second"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.account_by_key(&KeyHash::of("second-key1")).await.unwrap(),
        None
    );
    assert_eq!(
        store.account(&first.resource_id).await.unwrap(),
        Some(first.clone())
    );

    // A key hash already in use: refused, and the account row was rolled back with it.
    let clash = account(face_id("rg", "face2"));
    let clashing_keys = vec![key(KeySlot::Key1, "third-key1"), key(KeySlot::Key2, "first-key2")];
    let err = store
        .create_account(&clash, &clashing_keys, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.account(&clash.resource_id).await.unwrap(), None);
    assert_eq!(
        store.account_by_key(&KeyHash::of("third-key1")).await.unwrap(),
        None
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("first-key2")).await.unwrap(),
        Some((first.clone(), KeySlot::Key2))
    );
    assert_eq!(store.list_accounts(None, 100).await.unwrap(), vec![first]);
}

async fn list_accounts_pages_in_resource_id_order(db: Db) {
    let store = &db.store;
    // Names whose byte order differs from a natural-language collation (hyphens, underscores, dots, digits,
    // and the upper-case provider segments), created out of order.
    let ids = [
        face_id("rg", "ab"),
        face_id("rg", "a-c"),
        face_id("rg-a", "x1"),
        face_id("rga", "x1"),
        face_id("rg_b", "x1"),
        face_id("rg.c", "x1"),
        comm_id("rg", "ab"),
        face_id("rg", "a1"),
        face_id("rg", "b-0"),
        face_id("RG", "zz"),
        comm_id("rg", "a-c"),
    ];
    let mut created = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let a = account(id);
        store
            .create_account(&a, &keys(&format!("k{i}")), T0)
            .await
            .unwrap();
        created.push(a);
    }
    let mut expected = created.clone();
    expected.sort_by(|a, b| a.resource_id.as_str().cmp(b.resource_id.as_str()));

    assert_eq!(store.list_accounts(None, 100).await.unwrap(), expected);

    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .list_accounts(paged.last().map(|a: &Account| &a.resource_id), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        pages += 1;
        paged.extend(page);
    }
    assert_eq!(pages, 4);
    assert_eq!(paged, expected);

    assert_eq!(store.list_accounts(None, 0).await.unwrap(), vec![]);
    assert_eq!(
        store
            .list_accounts(Some(&expected[4].resource_id), 2)
            .await
            .unwrap(),
        expected[5..7].to_vec()
    );
    assert_eq!(
        store
            .list_accounts(Some(&expected[10].resource_id), 100)
            .await
            .unwrap(),
        vec![]
    );
}

async fn account_changes_apply_and_read_back(db: Db) {
    let store = &db.store;
    let mut expected = account(face_id("rg", "face1"));
    let other = account(face_id("rg", "face2"));
    store.create_account(&expected, &keys("a"), T0).await.unwrap();
    store.create_account(&other, &keys("b"), T0).await.unwrap();
    let id = expected.id;
    let later = T0.plus_secs(60);

    let changes = [
        AccountChange::ApprovedFlags(flags(&[
            FeatureFlag::FaceIdentification,
            FeatureFlag::FaceVerification,
        ])),
        AccountChange::Isv(Some(IsvGrant {
            flags: flags(&[FeatureFlag::FaceVerification]),
            cut_off_at: None,
        })),
        AccountChange::Disabled(true),
        AccountChange::Isv(Some(IsvGrant {
            flags: flags(&[FeatureFlag::FaceVerification, FeatureFlag::LimitedAccessHighRisk]),
            cut_off_at: Some(T0.plus_secs(30)),
        })),
        AccountChange::ApprovedFlags(FlagSet::EMPTY),
        AccountChange::Disabled(false),
        AccountChange::RevokeUserTokens,
        AccountChange::Isv(None),
    ];
    for change in changes {
        match &change {
            AccountChange::ApprovedFlags(f) => expected.approved_flags = *f,
            // A cut-off and a disable are remembered past a re-grant, an ISV standing removed, or a re-enable.
            AccountChange::Isv(grant) => {
                expected.isv = *grant;
                if let Some(at) = grant.and_then(|g| g.cut_off_at) {
                    expected.isv_tokens_revoked_at = Some(at);
                }
            }
            AccountChange::Disabled(d) => {
                expected.disabled = *d;
                if *d {
                    expected.tokens_revoked_at = Some(later);
                }
            }
            AccountChange::RevokeUserTokens => expected.user_tokens_revoked_at = Some(later),
        }
        let returned = store.update_account(id, &change, later).await.unwrap();
        assert_eq!(returned, expected, "after {change:?}");
        assert_eq!(
            store.account(&expected.resource_id).await.unwrap(),
            Some(expected.clone()),
            "after {change:?}"
        );
        assert_eq!(
            store.account_by_key(&KeyHash::of("a-key1")).await.unwrap(),
            Some((expected.clone(), KeySlot::Key1))
        );
    }
    assert_eq!(store.account(&other.resource_id).await.unwrap(), Some(other));

    let missing = Uuid::new_v4();
    for change in [
        AccountChange::ApprovedFlags(FlagSet::EMPTY),
        AccountChange::Isv(None),
        AccountChange::Disabled(true),
        AccountChange::RevokeUserTokens,
    ] {
        let err = store.update_account(missing, &change, later).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{change:?}: {err:?}");
    }
}

async fn set_account_key_replaces_the_old_key(db: Db) {
    let store = &db.store;
    let a = account(face_id("rg", "face1"));
    let b = account(face_id("rg", "face2"));
    store.create_account(&a, &keys("a"), T0).await.unwrap();
    store.create_account(&b, &keys("b"), T0).await.unwrap();

    let new = KeyHash::of("a-key1-regenerated");
    store
        .set_account_key(a.id, &key(KeySlot::Key1, "a-key1-regenerated"), T0.plus_secs(1))
        .await
        .unwrap();
    assert_eq!(store.account_by_key(&KeyHash::of("a-key1")).await.unwrap(), None);
    // The slot's generation counts the regeneration (an STS token of the old key no longer stands).
    let a = Account {
        key_generations: KeyGenerations { key1: 2, key2: 1 },
        ..a
    };
    assert!(!a.minted_by_current_key(KeySlot::Key1, 1) && a.minted_by_current_key(KeySlot::Key2, 1));
    assert_eq!(
        store.account_by_key(&new).await.unwrap(),
        Some((a.clone(), KeySlot::Key1))
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("a-key2")).await.unwrap(),
        Some((a.clone(), KeySlot::Key2))
    );

    let err = store
        .set_account_key(Uuid::new_v4(), &key(KeySlot::Key2, "x"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Another account's key: refused, nothing changes.
    let err = store
        .set_account_key(a.id, &key(KeySlot::Key2, "b-key1"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.account_by_key(&KeyHash::of("b-key1")).await.unwrap(),
        Some((b, KeySlot::Key1))
    );
    assert_eq!(
        store.account_by_key(&KeyHash::of("a-key2")).await.unwrap(),
        Some((a.clone(), KeySlot::Key2)),
        "a refused key counts no generation"
    );
    store
        .set_account_key(a.id, &key(KeySlot::Key2, "a-key2-regenerated"), T0.plus_secs(2))
        .await
        .unwrap();
    assert_eq!(
        store
            .account(&a.resource_id)
            .await
            .unwrap()
            .unwrap()
            .key_generations,
        KeyGenerations { key1: 2, key2: 2 }
    );
}

// ---- settings ----

async fn settings_are_inserted_only_if_absent(db: Db) {
    let store = &db.store;
    assert_eq!(store.setting("issuer").await.unwrap(), None);
    assert!(
        store
            .insert_setting_if_absent("issuer", "https://a")
            .await
            .unwrap()
    );
    assert_eq!(
        store.setting("issuer").await.unwrap().as_deref(),
        Some("https://a")
    );
    assert!(
        !store
            .insert_setting_if_absent("issuer", "https://b")
            .await
            .unwrap()
    );
    assert_eq!(
        store.setting("issuer").await.unwrap().as_deref(),
        Some("https://a")
    );
    assert!(store.insert_setting_if_absent("other", "").await.unwrap());
    assert_eq!(store.setting("other").await.unwrap().as_deref(), Some(""));
    assert_eq!(
        store.setting("issuer").await.unwrap().as_deref(),
        Some("https://a")
    );
}

// ---- signing keys ----

async fn signing_keys_bootstrap_only_once(db: Db) {
    let store = &db.store;
    let master = master();
    assert_eq!(store.signing_keys().await.unwrap(), vec![]);

    // Several nodes starting at once on a fresh database: exactly one bootstraps.
    let other = db.open_another().await;
    let candidates: Vec<Vec<StoredKey>> = (0..6)
        .map(|i| tessera_token::keys::bootstrap(&master, T0.plus_secs(i)).unwrap())
        .collect();
    let tasks: Vec<_> = candidates
        .iter()
        .enumerate()
        .map(|(i, keys)| {
            let store = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            let keys = keys.clone();
            tokio::spawn(async move { store.bootstrap_signing_keys(&keys).await.unwrap() })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "bootstrapped by {winners:?}");
    let first = by_kid(candidates[winners[0]].clone());
    assert_eq!(store.signing_keys().await.unwrap(), first);
    assert_eq!(other.signing_keys().await.unwrap(), first);

    // A later start keeps the keys it finds.
    let again = tessera_token::keys::bootstrap(&master, T0.plus_secs(60)).unwrap();
    assert!(!store.bootstrap_signing_keys(&again).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), first);
}

async fn rotation_promotes_retires_and_publishes(db: Db) {
    let store = &db.store;
    let master = master();
    let boot = tessera_token::keys::bootstrap(&master, T0).unwrap();
    let (active, pending) = (boot[0].clone(), boot[1].clone());
    assert_eq!(
        (active.state, pending.state),
        (KeyState::Active, KeyState::Pending)
    );
    assert!(store.bootstrap_signing_keys(&boot).await.unwrap());

    let t1 = T0.plus_secs(86_400);
    let plan = Rotation::plan(&store.signing_keys().await.unwrap(), &master, t1).unwrap();
    assert_eq!(plan.promote.as_deref(), Some(pending.kid.as_str()));
    assert_eq!(plan.retire, vec![active.kid.clone()]);
    store.rotate_signing_keys(&plan, t1).await.unwrap();

    let retired = StoredKey {
        state: KeyState::Retired,
        retired_at: Some(t1),
        ..active.clone()
    };
    let promoted = StoredKey {
        state: KeyState::Active,
        activated_at: Some(t1),
        ..pending.clone()
    };
    let after_first = by_kid(vec![retired.clone(), promoted.clone()]);
    let mut expected = after_first.clone();
    expected.push(plan.new_pending.clone());
    assert_eq!(store.signing_keys().await.unwrap(), expected);

    // The same plan again is stale: its pending key was already promoted.
    let err = store
        .rotate_signing_keys(&plan, t1.plus_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.signing_keys().await.unwrap(), expected);

    // A stale plan made from the bootstrap state, with a fresh pending key: refused without side effects.
    let stale = Rotation::plan(&boot, &master, t1.plus_secs(2)).unwrap();
    let err = store
        .rotate_signing_keys(&stale, t1.plus_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.signing_keys().await.unwrap(), expected);

    // A fresh plan rotates again.
    let t2 = t1.plus_secs(86_400);
    let plan2 = Rotation::plan(&store.signing_keys().await.unwrap(), &master, t2).unwrap();
    assert_eq!(plan2.promote.as_deref(), Some(plan.new_pending.kid.as_str()));
    assert_eq!(plan2.retire, vec![pending.kid.clone()]);
    store.rotate_signing_keys(&plan2, t2).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    let states: Vec<(String, KeyState)> = keys.iter().map(|k| (k.kid.clone(), k.state)).collect();
    let mut want = vec![
        (active.kid.clone(), KeyState::Retired),
        (pending.kid.clone(), KeyState::Retired),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    want.push((plan.new_pending.kid.clone(), KeyState::Active));
    want.push((plan2.new_pending.kid.clone(), KeyState::Pending));
    assert_eq!(states, want);
    let old = keys.iter().find(|k| k.kid == active.kid).unwrap();
    assert_eq!(
        old.retired_at,
        Some(t1),
        "an already retired key keeps its retirement time"
    );
}

async fn only_retired_signing_keys_are_removed(db: Db) {
    let store = &db.store;
    let master = master();
    let boot = tessera_token::keys::bootstrap(&master, T0).unwrap();
    assert!(store.bootstrap_signing_keys(&boot).await.unwrap());
    let t1 = T0.plus_secs(10);
    let plan = Rotation::plan(&boot, &master, t1).unwrap();
    store.rotate_signing_keys(&plan, t1).await.unwrap();
    let before = store.signing_keys().await.unwrap();
    assert_eq!(before.len(), 3);

    let all: Vec<String> = before
        .iter()
        .map(|k| k.kid.clone())
        .chain(["no-such-kid".to_owned()])
        .collect();
    store.remove_signing_keys(&all).await.unwrap();
    let after = store.signing_keys().await.unwrap();
    let expected: Vec<StoredKey> = before
        .into_iter()
        .filter(|k| k.state != KeyState::Retired)
        .collect();
    assert_eq!(after.len(), 2);
    assert_eq!(after, expected);
    assert!(!after.iter().any(|k| k.kid == boot[0].kid));

    store.remove_signing_keys(&[]).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap(), expected);
}

// ---- audit ----

async fn audit_appends_chain_across_batches(db: Db) {
    let store = &db.store;
    assert_eq!(store.audit_events(&all_events()).await.unwrap(), vec![]);
    let mut appended = Vec::new();
    let mut n = 0;
    for size in [3, 0, 1, 5] {
        let batch: Vec<NewEvent> = (0..size)
            .map(|_| {
                n += 1;
                event(
                    n,
                    "account:x",
                    "sts.issueLimitedAccessToken",
                    &format!("jti-{n}"),
                    if n % 2 == 0 {
                        Outcome::Denied
                    } else {
                        Outcome::Success
                    },
                    (n % 3 == 0).then_some("isv-1"),
                )
            })
            .collect();
        let sealed = store.append_audit(batch.clone()).await.unwrap();
        assert_eq!(sealed.len(), batch.len());
        for (e, new) in sealed.iter().zip(&batch) {
            assert_eq!(
                (
                    e.at, &e.actor, &e.action, &e.subject, e.outcome, &e.details, &e.isv
                ),
                (
                    new.at,
                    &new.actor,
                    &new.action,
                    &new.subject,
                    new.outcome,
                    &new.details,
                    &new.isv
                )
            );
        }
        appended.extend(sealed);
    }
    assert_eq!(seqs(&appended), (1..=9).collect::<Vec<_>>());
    assert_eq!(appended[0].prev_hash, GENESIS_HASH);
    for pair in appended.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let log = verified_log(store.as_ref()).await;
    assert_eq!(log, appended);
}

async fn audit_queries_filter_and_page(db: Db) {
    let store = &db.store;
    let issue = "sts.issueLimitedAccessToken";
    let events = [
        event(
            1000,
            "admin",
            "admin.account.create",
            "s1",
            Outcome::Success,
            None,
        ),
        event(2000, "account:a", issue, "j1", Outcome::Success, Some("isv1")),
        event(3000, "account:a", issue, "j2", Outcome::Denied, Some("isv1")),
        event(4000, "account:b", issue, "j3", Outcome::Success, Some("isv2")),
        event(
            5000,
            "admin",
            "admin.account.update",
            "s1",
            Outcome::Success,
            None,
        ),
        event(6000, "anonymous", "sts.token", "s2", Outcome::Denied, None),
    ];
    store.append_audit(events[..2].to_vec()).await.unwrap();
    store.append_audit(events[2..].to_vec()).await.unwrap();

    let q = |f: fn(&mut AuditQuery)| {
        let mut query = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut query);
        query
    };
    let cases: Vec<(AuditQuery, Vec<i64>)> = vec![
        (q(|_| {}), vec![1, 2, 3, 4, 5, 6]),
        (q(|q| q.actor = Some("admin".into())), vec![1, 5]),
        (
            q(|q| q.action = Some("sts.issueLimitedAccessToken".into())),
            vec![2, 3, 4],
        ),
        (q(|q| q.subject = Some("s1".into())), vec![1, 5]),
        (q(|q| q.outcome = Some(Outcome::Denied)), vec![3, 6]),
        (q(|q| q.outcome = Some(Outcome::Success)), vec![1, 2, 4, 5]),
        (q(|q| q.isv = Some("isv1".into())), vec![2, 3]),
        (q(|q| q.isv = Some("isv2".into())), vec![4]),
        (
            q(|q| q.since = Some(Timestamp::from_millis(3000))),
            vec![3, 4, 5, 6],
        ),
        (q(|q| q.until = Some(Timestamp::from_millis(3000))), vec![1, 2]),
        (
            q(|q| {
                q.since = Some(Timestamp::from_millis(2000));
                q.until = Some(Timestamp::from_millis(5000));
            }),
            vec![2, 3, 4],
        ),
        (
            q(|q| {
                q.actor = Some("account:a".into());
                q.outcome = Some(Outcome::Success);
            }),
            vec![2],
        ),
        (q(|q| q.actor = Some("nobody".into())), vec![]),
        (
            q(|q| {
                q.after_seq = 2;
                q.limit = 2;
            }),
            vec![3, 4],
        ),
        (
            q(|q| {
                q.after_seq = 4;
                q.limit = 2;
            }),
            vec![5, 6],
        ),
        (q(|q| q.after_seq = 6), vec![]),
        (q(|q| q.limit = 0), vec![1]),
        (q(|q| q.limit = 1), vec![1]),
        (q(|q| q.limit = u32::MAX), vec![1, 2, 3, 4, 5, 6]),
        (
            q(|q| {
                q.action = Some("sts.issueLimitedAccessToken".into());
                q.limit = 2;
            }),
            vec![2, 3],
        ),
        (
            q(|q| {
                q.action = Some("sts.issueLimitedAccessToken".into());
                q.after_seq = 3;
                q.limit = 2;
            }),
            vec![4],
        ),
    ];
    for (query, want) in cases {
        let got = store.audit_events(&query).await.unwrap();
        assert_eq!(seqs(&got), want, "{query:?}");
        for e in &got {
            let new = &events[usize::try_from(e.seq - 1).unwrap()];
            assert_eq!((&e.subject, e.at, &e.isv), (&new.subject, new.at, &new.isv));
        }
    }
}

async fn audit_table_is_append_only(db: Db) {
    let store = &db.store;
    store
        .append_audit((1..=3).map(simple_event).collect())
        .await
        .unwrap();
    let before = verified_log(store.as_ref()).await;

    let update = db
        .raw("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .await;
    assert!(update.is_err(), "UPDATE was allowed: {update:?}");
    let update_all = db.raw("UPDATE audit_events SET details = '{}'").await;
    assert!(update_all.is_err(), "UPDATE was allowed: {update_all:?}");
    let delete = db.raw("DELETE FROM audit_events WHERE seq = 3").await;
    assert!(delete.is_err(), "DELETE was allowed: {delete:?}");
    let delete_all = db.raw("DELETE FROM audit_events").await;
    assert!(delete_all.is_err(), "DELETE was allowed: {delete_all:?}");
    // The raw connection itself works: a read succeeds.
    db.raw("SELECT 1").await.unwrap();

    assert_eq!(verified_log(store.as_ref()).await, before);
}

async fn audit_writer_serves_concurrent_callers(db: Db) {
    let writer = AuditWriter::start(db.store.clone());
    let tasks: Vec<_> = (1..=200)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { (i, writer.record(simple_event(i)).await.unwrap()) })
        })
        .collect();
    let mut seq_of = std::collections::HashMap::new();
    for t in tasks {
        let (i, seq) = t.await.unwrap();
        seq_of.insert(i, seq);
    }
    let distinct: BTreeSet<i64> = seq_of.values().copied().collect();
    assert_eq!(distinct, (1..=200).collect());

    let log = verified_log(db.store.as_ref()).await;
    assert_eq!(seqs(&log), (1..=200).collect::<Vec<_>>());
    for (i, seq) in seq_of {
        let e = &log[usize::try_from(seq - 1).unwrap()];
        assert_eq!(
            e.subject,
            format!("s{i}"),
            "record returned the seq of its own event"
        );
    }
}

async fn two_stores_append_to_one_chain(db: Db) {
    const TASKS_PER_STORE: i64 = 3;
    const BATCHES: i64 = 10;
    const BATCH: i64 = 4;
    let stores = [db.store.clone(), db.open_another().await];
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_STORE {
            let store = store.clone();
            let writer = i64::try_from(s).unwrap() * TASKS_PER_STORE + t;
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for b in 0..BATCHES {
                    let batch = (0..BATCH)
                        .map(|e| {
                            event(
                                T0.millis(),
                                &format!("node{s}"),
                                "admin.test",
                                &format!("w{writer}-b{b}-e{e}"),
                                Outcome::Success,
                                None,
                            )
                        })
                        .collect();
                    let sealed = store.append_audit(batch).await.unwrap();
                    let batch_seqs = seqs(&sealed);
                    let first = batch_seqs[0];
                    assert_eq!(batch_seqs, (first..first + BATCH).collect::<Vec<_>>());
                    mine.extend(sealed);
                }
                mine
            }));
        }
    }
    let mut returned = Vec::new();
    for t in tasks {
        returned.extend(t.await.unwrap());
    }
    let total = 2 * TASKS_PER_STORE * BATCHES * BATCH;
    returned.sort_by_key(|e| e.seq);
    assert_eq!(seqs(&returned), (1..=total).collect::<Vec<_>>());

    let log = verified_log(db.store.as_ref()).await;
    assert_eq!(log, returned);
    assert_eq!(verified_log(stores[1].as_ref()).await, log);
}

async fn sealed_access_keys_of_enabled_communication_accounts(db: Db) {
    let store = db.store.as_ref();
    let sealed = |k: &str| NewKey {
        sealed: Some(format!("sealed-{k}").into_bytes()),
        ..key(KeySlot::Key1, k)
    };
    let chat = account(comm_id("rg", "chat1"));
    let off = Account {
        disabled: true,
        tokens_revoked_at: None,
        isv_tokens_revoked_at: None,
        ..account(comm_id("rg", "chat2"))
    };
    let face = account(face_id("rg", "face1"));
    store
        .create_account(
            &chat,
            &[
                sealed("c1"),
                NewKey {
                    slot: KeySlot::Key2,
                    ..sealed("c2")
                },
            ],
            T0,
        )
        .await
        .unwrap();
    store.create_account(&off, &[sealed("o1")], T0).await.unwrap();
    store.create_account(&face, &keys("face"), T0).await.unwrap();
    let expect = |chat: &Account, k1: &str| {
        vec![
            SealedAccessKey {
                account: chat.clone(),
                slot: KeySlot::Key1,
                sealed: format!("sealed-{k1}").into_bytes(),
            },
            SealedAccessKey {
                account: chat.clone(),
                slot: KeySlot::Key2,
                sealed: b"sealed-c2".to_vec(),
            },
        ]
    };
    assert_eq!(store.access_keys().await.unwrap(), expect(&chat, "c1"));
    store
        .set_account_key(chat.id, &sealed("c1-new"), T0)
        .await
        .unwrap();
    let chat = Account {
        key_generations: KeyGenerations { key1: 2, key2: 1 },
        ..chat
    };
    assert_eq!(store.access_keys().await.unwrap(), expect(&chat, "c1-new"));
    assert_eq!(
        store.account_by_key(&KeyHash::of("c1-new")).await.unwrap(),
        Some((chat.clone(), KeySlot::Key1))
    );
}

// ---- identities ----

async fn comm_account(store: &dyn Store, name: &str) -> Account {
    let acct = account(comm_id("rg", name));
    store.create_account(&acct, &keys(name), T0).await.unwrap();
    acct
}

fn new_identity(account: &Account, n: u128, name: Option<&str>, kind: IdentityKind) -> Identity {
    Identity {
        id: IdentityId::new(account.id, Uuid::from_u128(n)),
        name: name.map(|n| IdentityName::parse(n, kind).unwrap()),
        kind,
        created_at: T0,
        revocation: 0,
        deleted_at: None,
    }
}

async fn person_groups_and_persons_belong_to_one_account(db: Db) {
    let store = db.store.as_ref();
    let (a, b) = (account(face_id("rg", "face-a")), account(face_id("rg", "face-b")));
    for acct in [&a, &b] {
        store.create_account(acct, &[], T0).await.unwrap();
    }
    for id in ["g3", "g1", "g2"] {
        store.create_group(&new_group(&a, id)).await.unwrap();
    }
    store.create_group(&new_group(&b, "g1")).await.unwrap();
    assert!(matches!(
        store.create_group(&new_group(&a, "g1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.group(a.id, &gid("g1")).await.unwrap(),
        Some(new_group(&a, "g1"))
    );
    assert_eq!(store.group(a.id, &gid("nope")).await.unwrap(), None);
    let page: Vec<String> = store
        .list_groups(a.id, Some(&gid("g1")), 10)
        .await
        .unwrap()
        .iter()
        .map(|g| g.id.as_str().to_owned())
        .collect();
    assert_eq!(page, ["g2", "g3"]);
    store
        .update_group(a.id, &gid("g1"), "renamed", None)
        .await
        .unwrap();
    let updated = store.group(a.id, &gid("g1")).await.unwrap().unwrap();
    assert_eq!((updated.name.as_str(), updated.user_data), ("renamed", None));
    assert_eq!(
        store.group(b.id, &gid("g1")).await.unwrap().unwrap().name,
        "group g1"
    );

    for n in [3, 1, 2] {
        store.create_person(&new_person(n, &a, "g1")).await.unwrap();
    }
    assert!(matches!(
        store.create_person(&new_person(9, &a, "missing")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        matches!(
            store.create_person(&new_person(9, &b, "g2")).await,
            Err(StoreError::NotFound(_))
        ),
        "B has no group g2"
    );
    assert_eq!(
        store.person(a.id, &gid("g1"), Uuid::from_u128(1)).await.unwrap(),
        Some(new_person(1, &a, "g1"))
    );
    assert_eq!(
        store.person(b.id, &gid("g1"), Uuid::from_u128(1)).await.unwrap(),
        None,
        "not B's"
    );
    let listed: Vec<Uuid> = store
        .list_persons(a.id, &gid("g1"), Some(Uuid::from_u128(1)), 10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, [Uuid::from_u128(2), Uuid::from_u128(3)]);
    assert!(matches!(
        store.delete_person(b.id, &gid("g1"), Uuid::from_u128(1)).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_person(a.id, &gid("g1"), Uuid::from_u128(1))
        .await
        .unwrap();
    assert_eq!(
        store.person(a.id, &gid("g1"), Uuid::from_u128(1)).await.unwrap(),
        None
    );

    // Deleting a group deletes its persons; the other account's group of the same id is untouched.
    store.delete_group(a.id, &gid("g1")).await.unwrap();
    assert_eq!(
        store.person(a.id, &gid("g1"), Uuid::from_u128(2)).await.unwrap(),
        None
    );
    assert!(matches!(
        store.delete_group(a.id, &gid("g1")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.group(b.id, &gid("g1")).await.unwrap().is_some());
    store.create_group(&new_group(&a, "g1")).await.unwrap();
    assert!(
        store
            .list_persons(a.id, &gid("g1"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn face_templates_expire_enrol_and_cascade(db: Db) {
    let store = db.store.as_ref();
    let (a, b) = (account(face_id("rg", "face-a")), account(face_id("rg", "face-b")));
    for acct in [&a, &b] {
        store.create_account(acct, &[], T0).await.unwrap();
    }
    let detection = Detection {
        id: Uuid::from_u128(7),
        account: a.id,
        recognition_model: "recognition_04".into(),
        template: template(0.25),
        created_at: T0,
        expires_at: T0.plus_secs(86_400),
    };
    store.save_detection(&detection).await.unwrap();
    let other = Detection {
        id: Uuid::from_u128(8),
        template: template(-0.5),
        ..detection.clone()
    };
    store.save_detection(&other).await.unwrap();
    let mut read = store
        .detections(
            a.id,
            &[other.id, Uuid::from_u128(99), detection.id],
            T0.plus_secs(60),
        )
        .await
        .unwrap();
    read.sort_by_key(|d| d.id);
    assert_eq!(
        read,
        vec![detection.clone(), other.clone()],
        "templates round-trip exactly; unknown ids are left out"
    );
    assert_eq!(store.detections(a.id, &[], T0).await.unwrap(), vec![]);
    assert_eq!(
        store.detections(b.id, &[detection.id], T0).await.unwrap(),
        vec![],
        "not B's"
    );
    assert_eq!(
        store
            .detections(a.id, &[detection.id], T0.plus_secs(86_400))
            .await
            .unwrap(),
        vec![],
        "expired"
    );
    assert_eq!(store.purge_detections(T0.plus_secs(86_399)).await.unwrap(), 0);
    assert_eq!(store.purge_detections(T0.plus_secs(86_400)).await.unwrap(), 2);

    let gid = gid("g");
    store.create_group(&new_group(&a, "g")).await.unwrap();
    for n in [1, 2] {
        store.create_person(&new_person(n, &a, "g")).await.unwrap();
    }
    let face = |id: u128, person: u128, acct: &Account| new_face(id, person, acct, "g");
    for (id, person) in [(12, 1), (11, 1), (21, 2)] {
        store.add_persisted_face(&face(id, person, &a)).await.unwrap();
    }
    for bad in [face(30, 3, &a), face(31, 1, &b)] {
        assert!(matches!(
            store.add_persisted_face(&bad).await,
            Err(StoreError::NotFound(_))
        ));
    }
    let all = store.persisted_faces(a.id, &gid, None).await.unwrap();
    assert_eq!(all, [face(11, 1, &a), face(12, 1, &a), face(21, 2, &a)]);
    let ids = |faces: Vec<PersistedFace>| faces.iter().map(|f| f.id.as_u128()).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .persisted_faces(a.id, &gid, Some(Uuid::from_u128(2)))
            .await
            .unwrap()),
        [21]
    );
    assert!(store.persisted_faces(b.id, &gid, None).await.unwrap().is_empty());
    assert!(
        matches!(
            store
                .delete_persisted_face(a.id, &gid, Uuid::from_u128(2), Uuid::from_u128(11))
                .await,
            Err(StoreError::NotFound(_))
        ),
        "face 11 is person 1's"
    );
    store
        .delete_persisted_face(a.id, &gid, Uuid::from_u128(1), Uuid::from_u128(11))
        .await
        .unwrap();
    // A person's faces go with the person, and everything with the group.
    store.delete_person(a.id, &gid, Uuid::from_u128(1)).await.unwrap();
    assert_eq!(ids(store.persisted_faces(a.id, &gid, None).await.unwrap()), [21]);
    store.delete_group(a.id, &gid).await.unwrap();
    assert!(store.persisted_faces(a.id, &gid, None).await.unwrap().is_empty());
}

async fn training_freezes_enrolments_and_counts_removals(db: Db) {
    let store = db.store.as_ref();
    let (a, b) = (account(face_id("rg", "face-a")), account(face_id("rg", "face-b")));
    for acct in [&a, &b] {
        store.create_account(acct, &[], T0).await.unwrap();
    }
    let g = gid("g");
    // A's group g holds persons 1, 3, 5 and 7; the persons with ids between them, 2 (B's group g) and 4 (A's
    // group h), have faces that must not show in g.
    for (acct, group) in [(&a, "g"), (&a, "h"), (&b, "g")] {
        store.create_group(&new_group(acct, group)).await.unwrap();
    }
    for (n, acct, group) in [
        (1, &a, "g"),
        (3, &a, "g"),
        (5, &a, "g"),
        (7, &a, "g"),
        (2, &b, "g"),
        (4, &a, "h"),
    ] {
        store.create_person(&new_person(n, acct, group)).await.unwrap();
    }
    for (id, person, acct, group) in [
        (12, 1, &a, "g"),
        (11, 1, &a, "g"),
        (31, 3, &a, "g"),
        (21, 2, &b, "g"),
        (41, 4, &a, "h"),
    ] {
        store
            .add_persisted_face(&new_face(id, person, acct, group))
            .await
            .unwrap();
    }
    let training = |generation: i64, secs: Option<i64>, removals: i64| Training {
        generation,
        trained_at: secs.map(|s| T0.plus_secs(s)),
        removals,
    };
    let training_of = |acct: Uuid, group: &'static str| async move {
        store.group(acct, &gid(group)).await.unwrap().unwrap().training
    };
    let templates = |faces: &[(u128, u128)]| -> Vec<(Uuid, Vec<f32>)> {
        faces
            .iter()
            .map(|&(person, face)| (Uuid::from_u128(person), template(face as f32)))
            .collect()
    };
    let face_ids = |persons: Vec<Person>| -> Vec<(u128, Vec<u128>)> {
        persons
            .into_iter()
            .map(|p| {
                (
                    p.id.as_u128(),
                    p.persisted_face_ids.iter().map(|f| f.as_u128()).collect(),
                )
            })
            .collect()
    };

    for (acct, group) in [(&a, "missing"), (&b, "h")] {
        assert!(
            matches!(
                store.train_group(acct.id, &gid(group), T0).await,
                Err(StoreError::NotFound(_))
            ),
            "{group}"
        );
    }
    assert_eq!(
        training_of(a.id, "g").await,
        training(0, None, 0),
        "never trained"
    );
    assert!(store.trained_templates(a.id, &g, 0).await.unwrap().is_empty());

    // Training 1 takes the faces enrolled so far; faces enrolled after it wait for training 2.
    assert_eq!(
        store.train_group(a.id, &g, T0.plus_secs(60)).await.unwrap(),
        training(1, Some(60), 0)
    );
    assert_eq!(training_of(a.id, "g").await, training(1, Some(60), 0));
    for (id, person) in [(13, 1), (71, 7)] {
        store
            .add_persisted_face(&new_face(id, person, &a, "g"))
            .await
            .unwrap();
    }
    let generation_1 = templates(&[(1, 11), (1, 12), (3, 31)]);
    assert_eq!(store.trained_templates(a.id, &g, 1).await.unwrap(), generation_1);
    assert_eq!(
        store.train_group(a.id, &g, T0.plus_secs(120)).await.unwrap(),
        training(2, Some(120), 0)
    );
    assert_eq!(
        store.trained_templates(a.id, &g, 2).await.unwrap(),
        templates(&[(1, 11), (1, 12), (1, 13), (3, 31), (7, 71)])
    );
    assert_eq!(store.trained_templates(a.id, &g, 1).await.unwrap(), generation_1);

    // Persons come with their face ids, in id order, whole lists and pages alike.
    assert_eq!(
        store
            .person(a.id, &g, Uuid::from_u128(1))
            .await
            .map(|p| face_ids(Vec::from_iter(p)))
            .unwrap(),
        [(1, vec![11, 12, 13])]
    );
    assert_eq!(
        store
            .person(a.id, &g, Uuid::from_u128(5))
            .await
            .map(|p| face_ids(Vec::from_iter(p)))
            .unwrap(),
        [(5, vec![])]
    );
    assert_eq!(
        face_ids(store.list_persons(a.id, &g, None, 10).await.unwrap()),
        [(1, vec![11, 12, 13]), (3, vec![31]), (5, vec![]), (7, vec![71])]
    );
    assert_eq!(
        face_ids(
            store
                .list_persons(a.id, &g, Some(Uuid::from_u128(1)), 2)
                .await
                .unwrap()
        ),
        [(3, vec![31]), (5, vec![])]
    );
    assert_eq!(
        face_ids(
            store
                .list_persons(a.id, &g, Some(Uuid::from_u128(5)), 2)
                .await
                .unwrap()
        ),
        [(7, vec![71])]
    );

    // B's group g is its own: untrained, with only B's face; B cannot remove A's faces or persons.
    assert_eq!(training_of(b.id, "g").await, training(0, None, 0));
    assert_eq!(
        store.trained_templates(b.id, &g, 3).await.unwrap(),
        templates(&[(2, 21)])
    );
    assert!(
        store
            .trained_templates(b.id, &gid("h"), 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .delete_persisted_face(b.id, &g, Uuid::from_u128(1), Uuid::from_u128(12))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_person(b.id, &g, Uuid::from_u128(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        training_of(b.id, "g").await,
        training(0, None, 0),
        "no removal counted"
    );

    // Removals are counted (failed ones are not) and leave the trained set at once.
    store
        .delete_persisted_face(a.id, &g, Uuid::from_u128(1), Uuid::from_u128(12))
        .await
        .unwrap();
    assert_eq!(training_of(a.id, "g").await, training(2, Some(120), 1));
    assert!(matches!(
        store
            .delete_persisted_face(a.id, &g, Uuid::from_u128(1), Uuid::from_u128(12))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_person(a.id, &g, Uuid::from_u128(3)).await.unwrap();
    assert!(matches!(
        store.delete_person(a.id, &g, Uuid::from_u128(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(training_of(a.id, "g").await, training(2, Some(120), 2));
    assert_eq!(
        store.trained_templates(a.id, &g, 2).await.unwrap(),
        templates(&[(1, 11), (1, 13), (7, 71)])
    );
    assert_eq!(
        store.trained_templates(a.id, &g, 1).await.unwrap(),
        templates(&[(1, 11)])
    );
    assert_eq!(
        face_ids(store.list_persons(a.id, &g, None, 10).await.unwrap()),
        [(1, vec![11, 13]), (5, vec![]), (7, vec![71])]
    );
    assert_eq!(
        training_of(a.id, "h").await,
        training(0, None, 0),
        "other groups are untouched"
    );
}

async fn face_lists_belong_to_one_account(db: Db) {
    let store = db.store.as_ref();
    let (a, b) = (account(face_id("rg", "face-a")), account(face_id("rg", "face-b")));
    for acct in [&a, &b] {
        store.create_account(acct, &[], T0).await.unwrap();
    }
    for id in ["l3", "l1", "l2"] {
        store.create_face_list(&new_face_list(&a, id)).await.unwrap();
    }
    store.create_face_list(&new_face_list(&b, "l1")).await.unwrap();
    assert!(matches!(
        store.create_face_list(&new_face_list(&a, "l1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.face_list(a.id, &gid("l1")).await.unwrap(),
        Some(new_face_list(&a, "l1"))
    );
    assert_eq!(store.face_list(a.id, &gid("nope")).await.unwrap(), None);
    let ids = |lists: Vec<LargeFaceList>| -> Vec<String> {
        lists.iter().map(|l| l.id.as_str().to_owned()).collect()
    };
    assert_eq!(
        ids(store.list_face_lists(a.id, None, 2).await.unwrap()),
        ["l1", "l2"]
    );
    assert_eq!(
        ids(store.list_face_lists(a.id, Some(&gid("l2")), 2).await.unwrap()),
        ["l3"]
    );
    assert_eq!(ids(store.list_face_lists(b.id, None, 10).await.unwrap()), ["l1"]);

    store
        .update_face_list(a.id, &gid("l1"), "renamed", None)
        .await
        .unwrap();
    store
        .train_face_list(a.id, &gid("l1"), T0.plus_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.face_list(a.id, &gid("l1")).await.unwrap(),
        Some(LargeFaceList {
            name: "renamed".into(),
            user_data: None,
            trained_at: Some(T0.plus_secs(60)),
            ..new_face_list(&a, "l1")
        })
    );
    assert_eq!(
        store.face_list(b.id, &gid("l1")).await.unwrap(),
        Some(new_face_list(&b, "l1")),
        "B's list of the same id is untouched"
    );

    // B has no list l2, and nobody has a list "missing".
    for (acct, list) in [(&a, "missing"), (&b, "l2")] {
        let list = gid(list);
        assert!(matches!(
            store.update_face_list(acct.id, &list, "x", None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.train_face_list(acct.id, &list, T0).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.delete_face_list(acct.id, &list).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(store.face_list(a.id, &gid("l2")).await.unwrap().is_some());

    store.delete_face_list(a.id, &gid("l1")).await.unwrap();
    assert_eq!(store.face_list(a.id, &gid("l1")).await.unwrap(), None);
    assert!(matches!(
        store.delete_face_list(a.id, &gid("l1")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.face_list(b.id, &gid("l1")).await.unwrap().is_some());
}

async fn list_faces_page_and_cascade(db: Db) {
    let store = db.store.as_ref();
    let (a, b) = (account(face_id("rg", "face-a")), account(face_id("rg", "face-b")));
    for acct in [&a, &b] {
        store.create_account(acct, &[], T0).await.unwrap();
    }
    let l = gid("l");
    // A's list l holds faces 1, 3, 5 and 7; the faces with ids between them, 2 (B's list l) and 4 (A's list m),
    // must not show in it.
    for (acct, list) in [(&a, "l"), (&a, "m"), (&b, "l")] {
        store.create_face_list(&new_face_list(acct, list)).await.unwrap();
    }
    for (id, acct, list) in [
        (5, &a, "l"),
        (1, &a, "l"),
        (7, &a, "l"),
        (3, &a, "l"),
        (2, &b, "l"),
        (4, &a, "m"),
    ] {
        store.add_list_face(&new_list_face(id, acct, list)).await.unwrap();
    }
    for bad in [new_list_face(9, &a, "missing"), new_list_face(9, &b, "m")] {
        assert!(
            matches!(store.add_list_face(&bad).await, Err(StoreError::NotFound(_))),
            "{}",
            bad.list.as_str()
        );
    }
    assert!(matches!(
        store.add_list_face(&new_list_face(1, &a, "l")).await,
        Err(StoreError::Conflict(_))
    ));
    let faces = |ids: &[u128], acct: &Account, list: &str| -> Vec<ListFace> {
        ids.iter().map(|&id| new_list_face(id, acct, list)).collect()
    };
    assert_eq!(
        store.list_faces(a.id, &l, None, 10).await.unwrap(),
        faces(&[1, 3, 5, 7], &a, "l"),
        "in id order, templates exact"
    );
    assert_eq!(
        store.list_faces(a.id, &l, None, 2).await.unwrap(),
        faces(&[1, 3], &a, "l")
    );
    assert_eq!(
        store
            .list_faces(a.id, &l, Some(Uuid::from_u128(3)), 2)
            .await
            .unwrap(),
        faces(&[5, 7], &a, "l")
    );
    assert!(
        store
            .list_faces(a.id, &l, Some(Uuid::from_u128(7)), 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_faces(b.id, &l, None, 10).await.unwrap(),
        faces(&[2], &b, "l")
    );

    // Faces are deleted only from their own list of their own account.
    for (acct, list, id) in [(&b, "l", 1), (&a, "m", 1), (&a, "l", 2), (&a, "l", 9)] {
        assert!(
            matches!(
                store
                    .delete_list_face(acct.id, &gid(list), Uuid::from_u128(id))
                    .await,
                Err(StoreError::NotFound(_))
            ),
            "{list} {id}"
        );
    }
    store
        .delete_list_face(a.id, &l, Uuid::from_u128(3))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_list_face(a.id, &l, Uuid::from_u128(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list_faces(a.id, &l, None, 10).await.unwrap(),
        faces(&[1, 5, 7], &a, "l")
    );

    // Deleting a list deletes its faces; the other account's list of the same id keeps its own.
    store.delete_face_list(a.id, &l).await.unwrap();
    store.create_face_list(&new_face_list(&a, "l")).await.unwrap();
    assert!(store.list_faces(a.id, &l, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_faces(b.id, &l, None, 10).await.unwrap(),
        faces(&[2], &b, "l")
    );
    assert_eq!(
        store.list_faces(a.id, &gid("m"), None, 10).await.unwrap(),
        faces(&[4], &a, "m")
    );
}

async fn refresh_sessions_advance_once_per_generation(db: Db) {
    let store = db.store.as_ref();
    let acct = comm_account(store, "chat9").await;
    let bob = new_identity(&acct, 1, None, IdentityKind::Human);
    store.create_identity(&bob).await.unwrap();
    let session = Session {
        id: "sess-1".into(),
        identity: bob.id.clone(),
        created_at: T0,
        expires_at: T0.plus_secs(86_400),
        token_lifetime_minutes: 60,
        generation: 0,
        ended: None,
    };
    let first = KeyHash::of("secret-0");
    store.create_session(&session, &first).await.unwrap();
    assert_eq!(store.session("sess-1").await.unwrap(), Some(session.clone()));
    assert_eq!(store.session("nope").await.unwrap(), None);
    assert_eq!(
        store.refresh_secret(&first).await.unwrap(),
        Some(("sess-1".to_owned(), 0))
    );
    assert_eq!(store.refresh_secret(&KeyHash::of("other")).await.unwrap(), None);

    let second = KeyHash::of("secret-1");
    assert!(store.advance_session("sess-1", 0, &second).await.unwrap());
    assert!(
        !store
            .advance_session("sess-1", 0, &KeyHash::of("racer"))
            .await
            .unwrap(),
        "only one refresh wins a generation"
    );
    assert_eq!(store.refresh_secret(&KeyHash::of("racer")).await.unwrap(), None);
    assert_eq!(
        store.refresh_secret(&first).await.unwrap(),
        Some(("sess-1".to_owned(), 0)),
        "spent secrets stay, to recognise reuse"
    );
    assert_eq!(
        store.refresh_secret(&second).await.unwrap(),
        Some(("sess-1".to_owned(), 1))
    );
    assert_eq!(store.session("sess-1").await.unwrap().unwrap().generation, 1);

    store
        .end_session("sess-1", EndReason::SecretReused, T0.plus_secs(7))
        .await
        .unwrap();
    store
        .end_session("sess-1", EndReason::SignedOut, T0.plus_secs(8))
        .await
        .unwrap();
    let ended = store.session("sess-1").await.unwrap().unwrap();
    assert_eq!(ended.ended, Some((T0.plus_secs(7), EndReason::SecretReused)));
    assert!(
        !store
            .advance_session("sess-1", 1, &KeyHash::of("late"))
            .await
            .unwrap(),
        "an ended session never advances"
    );
}

async fn identities_live_revoke_and_die(db: Db) {
    let store = db.store.as_ref();
    let acct = comm_account(store, "chat1").await;
    let bob = new_identity(&acct, 1, Some("Bob@Contoso.com"), IdentityKind::Human);
    store.create_identity(&bob).await.unwrap();
    assert_eq!(store.identity(&bob.id).await.unwrap(), Some(bob.clone()));
    let by_name = IdentityName::parse("bob@contoso.com", IdentityKind::Human).unwrap();
    assert_eq!(
        store.identity_by_name(acct.id, &by_name).await.unwrap(),
        Some(bob.clone())
    );

    let revoked = store.revoke_identity_tokens(&bob.id).await.unwrap();
    assert_eq!(revoked.revocation, 1);
    assert_eq!(store.revoke_identity_tokens(&bob.id).await.unwrap().revocation, 2);

    store.delete_identity(&bob.id, T0.plus_secs(9)).await.unwrap();
    let gone = store.identity(&bob.id).await.unwrap().unwrap();
    assert_eq!(gone.deleted_at, Some(T0.plus_secs(9)));
    assert_eq!(gone.revocation, 3, "deletion also ends every token");
    assert_eq!(store.identity_by_name(acct.id, &by_name).await.unwrap(), None);
    for result in [
        store.revoke_identity_tokens(&bob.id).await.map(drop),
        store.delete_identity(&bob.id, T0).await,
    ] {
        assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    }
    let never = IdentityId::new(acct.id, Uuid::from_u128(99));
    assert_eq!(store.identity(&never).await.unwrap(), None);
    assert!(matches!(
        store.revoke_identity_tokens(&never).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn identity_names_are_unique_among_live_identities(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat1").await;
    let b = comm_account(store, "chat2").await;
    let first = new_identity(&a, 1, Some("sue@contoso.com"), IdentityKind::Human);
    store.create_identity(&first).await.unwrap();
    let clash = new_identity(&a, 2, Some("SUE@contoso.com"), IdentityKind::Bot);
    assert!(matches!(
        store.create_identity(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    // Another account may use the name; nameless identities never clash.
    store
        .create_identity(&new_identity(&b, 3, Some("sue@contoso.com"), IdentityKind::Human))
        .await
        .unwrap();
    store
        .create_identity(&new_identity(&a, 4, None, IdentityKind::Bot))
        .await
        .unwrap();
    store
        .create_identity(&new_identity(&a, 5, None, IdentityKind::Bot))
        .await
        .unwrap();
    // Deleting frees the name.
    store.delete_identity(&first.id, T0).await.unwrap();
    store.create_identity(&clash).await.unwrap();
    let name = IdentityName::parse("sue@contoso.com", IdentityKind::Human).unwrap();
    assert_eq!(
        store.identity_by_name(a.id, &name).await.unwrap().map(|i| i.id),
        Some(clash.id.clone())
    );
    // The same id twice is a conflict too.
    assert!(matches!(
        store.create_identity(&clash).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn identities_list_in_id_order(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat1").await;
    let b = comm_account(store, "chat2").await;
    let mut ids = Vec::new();
    for n in (1..=7).rev() {
        let i = new_identity(&a, n, None, IdentityKind::Human);
        store.create_identity(&i).await.unwrap();
        ids.push(i.id);
    }
    store
        .create_identity(&new_identity(&b, 100, None, IdentityKind::Human))
        .await
        .unwrap();
    store.delete_identity(&ids[0], T0).await.unwrap();
    ids.remove(0);
    ids.sort();
    let first = store.list_identities(a.id, None, 4).await.unwrap();
    assert_eq!(first.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids[..4]);
    let rest = store
        .list_identities(a.id, first.last().map(|i| &i.id), 4)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids[4..]);
}

// ---- SQLite only ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_served_by_one_process_and_read_beside_it() {
    let db = sqlite_db().await;
    match tessera_store::open(&db.url).await {
        Err(tessera_store::StoreError::Config(m)) => {
            assert!(m.contains("in use by another Tessera process"), "{m}")
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a second server opened a locked SQLite database"),
    }
    let sealed = db
        .store
        .append_audit(vec![event(
            T0.millis(),
            "admin",
            "admin.test",
            "s",
            Outcome::Success,
            None,
        )])
        .await
        .unwrap();
    let reader = tessera_store::open_read_only(&db.url).await.unwrap();
    let all = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(reader.audit_events(&all).await.unwrap(), sealed);
    assert!(
        reader
            .append_audit(vec![event(T0.millis(), "x", "y", "z", Outcome::Success, None)])
            .await
            .is_err()
    );

    let url = db.url.clone();
    let Db { store, _dir, .. } = db;
    drop(store);
    let reopened = tessera_store::open(&url)
        .await
        .expect("the lock is released with the store");
    assert_eq!(reopened.audit_events(&all).await.unwrap(), sealed);
}

// ---- chat ----

fn member(account: &Account, n: u128) -> IdentityId {
    IdentityId::new(account.id, Uuid::from_u128(n))
}

fn new_thread(account: &Account, n: u128, creator: u128, at: Timestamp) -> Thread {
    Thread {
        id: ThreadId::new(Uuid::from_u128(n)),
        account: account.id,
        topic: format!("topic {n}"),
        created_by: member(account, creator),
        created_at: at,
        deleted_at: None,
        last_message_at: None,
    }
}

fn joining(account: &Account, n: u128, name: &str) -> Participant {
    Participant {
        identity: member(account, n),
        display_name: Some(name.to_owned()),
        share_history_from: None,
    }
}

fn text(account: &Account, sender: u128, words: &str) -> NewMessage {
    NewMessage {
        kind: MessageType::Text,
        sender: Some(member(account, sender)),
        sender_display_name: Some(format!("user {sender}")),
        content: MessageContent {
            message: Some(words.to_owned()),
            ..MessageContent::default()
        },
        metadata: [("k".to_owned(), "v".to_owned())].into(),
    }
}

async fn chat_threads_create_once_and_list_by_activity(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-a").await;
    let bob = || joining(&a, 1, "Bob");
    let sue = || joining(&a, 2, "Sue");
    let first = new_thread(&a, 10, 1, T0);
    assert_eq!(
        store
            .create_thread(&first, &[bob(), sue()], Some("req-1"))
            .await
            .unwrap(),
        first
    );
    // The same creation again (another random id, the same repeatability id): the first thread, nothing new.
    let again = new_thread(&a, 11, 1, T0.plus_secs(1));
    assert_eq!(
        store
            .create_thread(&again, &[bob()], Some("req-1"))
            .await
            .unwrap(),
        first
    );
    assert_eq!(store.thread(a.id, &again.id).await.unwrap(), None);
    // Another creator may use the same repeatability id.
    let sues = new_thread(&a, 12, 2, T0.plus_secs(2));
    store.create_thread(&sues, &[sue()], Some("req-1")).await.unwrap();
    let third = new_thread(&a, 13, 1, T0.plus_secs(3));
    store.create_thread(&third, &[bob()], None).await.unwrap();

    assert_eq!(store.thread(a.id, &first.id).await.unwrap(), Some(first.clone()));
    let other = comm_account(store, "chat-b").await;
    assert_eq!(
        store.thread(other.id, &first.id).await.unwrap(),
        None,
        "not another account's"
    );
    assert_eq!(
        store.participant(&first.id, &member(&a, 2)).await.unwrap(),
        Some(sue())
    );
    assert_eq!(store.participant(&third.id, &member(&a, 2)).await.unwrap(), None);
    assert_eq!(store.participants(&first.id, 0, 10).await.unwrap().len(), 2);
    assert_eq!(store.participants(&first.id, 1, 10).await.unwrap().len(), 1);

    // Bob's threads, most recent activity first; a message moves the first thread to the top.
    let ids = |threads: Vec<Thread>| threads.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let bobs = store.threads_of(&member(&a, 1), None, None, 10).await.unwrap();
    assert_eq!(ids(bobs), [third.id.clone(), first.id.clone()]);
    store
        .post(
            &first.id,
            &ThreadChange::None,
            &text(&a, 2, "hi"),
            T0.plus_secs(60),
        )
        .await
        .unwrap();
    let page = store.threads_of(&member(&a, 1), None, None, 1).await.unwrap();
    assert_eq!(page[0].id, first.id);
    assert_eq!(page[0].last_message_at, Some(T0.plus_secs(60)));
    let rest = store
        .threads_of(&member(&a, 1), Some((T0.plus_secs(60), &first.id)), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(rest), std::slice::from_ref(&third.id));
    let recent = store
        .threads_of(&member(&a, 1), None, Some(T0.plus_secs(30)), 10)
        .await
        .unwrap();
    assert_eq!(ids(recent), std::slice::from_ref(&first.id));

    // A deleted thread is gone for everyone, once.
    store
        .delete_thread(a.id, &first.id, T0.plus_secs(90))
        .await
        .unwrap();
    assert_eq!(store.thread(a.id, &first.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_thread(a.id, &first.id, T0.plus_secs(91)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_thread(other.id, &third.id, T0.plus_secs(91)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        ids(store.threads_of(&member(&a, 1), None, None, 10).await.unwrap()),
        [third.id]
    );
}

async fn chat_posts_number_messages_and_apply_changes(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-posts").await;
    let thread = new_thread(&a, 20, 1, T0);
    store
        .create_thread(&thread, &[joining(&a, 1, "Bob")], None)
        .await
        .unwrap();

    // Ids follow the clock, strictly increasing even within one millisecond; sequence ids count.
    let m1 = store
        .post(&thread.id, &ThreadChange::None, &text(&a, 1, "one"), T0)
        .await
        .unwrap();
    let m2 = store
        .post(&thread.id, &ThreadChange::None, &text(&a, 1, "two"), T0)
        .await
        .unwrap();
    assert_eq!(
        (m1.id, m1.sequence_id, m1.version),
        (1_700_000_000_000, 1, 1_700_000_000_000)
    );
    assert_eq!((m2.id, m2.sequence_id), (1_700_000_000_001, 2));
    assert_eq!(store.message(&thread.id, m1.id).await.unwrap(), Some(m1.clone()));

    // Changes travel with their system message, in one transaction.
    let system = |kind, content| NewMessage {
        kind,
        sender: None,
        sender_display_name: None,
        content,
        metadata: Default::default(),
    };
    let topic = system(
        MessageType::TopicUpdated,
        MessageContent {
            topic: Some("Lunch".into()),
            initiator: Some(member(&a, 1)),
            ..MessageContent::default()
        },
    );
    store
        .post(
            &thread.id,
            &ThreadChange::Topic("Lunch".into()),
            &topic,
            T0.plus_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store.thread(a.id, &thread.id).await.unwrap().unwrap().topic,
        "Lunch"
    );
    let sue = joining(&a, 2, "Sue");
    let added = system(
        MessageType::ParticipantAdded,
        MessageContent {
            participants: vec![sue.clone()],
            initiator: Some(member(&a, 1)),
            ..MessageContent::default()
        },
    );
    let m = store
        .post(
            &thread.id,
            &ThreadChange::AddParticipants(vec![sue.clone()]),
            &added,
            T0.plus_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(
        store.message(&thread.id, m.id).await.unwrap().unwrap().body,
        added,
        "content round-trips"
    );
    assert_eq!(
        store.participant(&thread.id, &sue.identity).await.unwrap(),
        Some(sue.clone())
    );
    let removed = system(MessageType::ParticipantRemoved, MessageContent::default());
    store
        .post(
            &thread.id,
            &ThreadChange::RemoveParticipant(sue.identity.clone()),
            &removed,
            T0.plus_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(store.participant(&thread.id, &sue.identity).await.unwrap(), None);
    // Removing someone who is not there changes nothing, not even the counters.
    let before = store.messages(&thread.id, None, None, 100).await.unwrap();
    assert!(matches!(
        store
            .post(
                &thread.id,
                &ThreadChange::RemoveParticipant(sue.identity.clone()),
                &removed,
                T0.plus_secs(4)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.messages(&thread.id, None, None, 100).await.unwrap(), before);
    let next = store
        .post(
            &thread.id,
            &ThreadChange::None,
            &text(&a, 1, "five"),
            T0.plus_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(next.sequence_id, 6);

    // Nothing is posted to a deleted thread.
    store
        .delete_thread(a.id, &thread.id, T0.plus_secs(6))
        .await
        .unwrap();
    assert!(matches!(
        store
            .post(
                &thread.id,
                &ThreadChange::None,
                &text(&a, 1, "late"),
                T0.plus_secs(7)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Adding someone already in a thread keeps their first admission (window and display name), and the cap counts
/// the whole thread, not one request: the add that would pass it writes nothing, not even its message.
async fn chat_admissions_are_kept_and_the_thread_cap_holds(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-cap").await;
    let thread = new_thread(&a, 30, 1, T0);
    let sue = Participant {
        share_history_from: Some(T0.plus_secs(10)),
        ..joining(&a, 2, "Sue")
    };
    store
        .create_thread(&thread, &[joining(&a, 1, "Bob"), sue.clone()], None)
        .await
        .unwrap();
    let add = |people: Vec<Participant>| {
        let message = NewMessage {
            kind: MessageType::ParticipantAdded,
            sender: None,
            sender_display_name: None,
            content: MessageContent {
                participants: people.clone(),
                ..MessageContent::default()
            },
            metadata: Default::default(),
        };
        (ThreadChange::AddParticipants(people), message)
    };
    let (change, message) = add(vec![joining(&a, 2, "Mallory")]);
    store
        .post(&thread.id, &change, &message, T0.plus_secs(1))
        .await
        .unwrap();
    assert_eq!(
        store.participant(&thread.id, &sue.identity).await.unwrap(),
        Some(sue.clone()),
        "a re-add neither widens the window nor renames"
    );

    let cap = tessera_core::chat::MAX_PARTICIPANTS as u128;
    let batch = |from: u128, to: u128| (from..to).map(|n| joining(&a, n, "x")).collect::<Vec<_>>();
    let (change, message) = add(batch(100, 100 + cap - 3));
    store
        .post(&thread.id, &change, &message, T0.plus_secs(2))
        .await
        .unwrap();
    assert_eq!(
        store.participants(&thread.id, 0, 1000).await.unwrap().len() as u128,
        cap - 1
    );
    let before = store.messages(&thread.id, None, None, 100).await.unwrap();
    let (change, message) = add(batch(1000, 1002));
    assert!(matches!(
        store.post(&thread.id, &change, &message, T0.plus_secs(3)).await,
        Err(StoreError::LimitReached(_))
    ));
    assert_eq!(store.messages(&thread.id, None, None, 100).await.unwrap(), before);
    assert_eq!(
        store.participant(&thread.id, &member(&a, 1000)).await.unwrap(),
        None
    );
    let (change, message) = add(batch(1000, 1001));
    store
        .post(&thread.id, &change, &message, T0.plus_secs(4))
        .await
        .unwrap();
    assert_eq!(
        store.participants(&thread.id, 0, 1000).await.unwrap().len() as u128,
        cap,
        "the last seat is taken"
    );
}

async fn chat_messages_edit_delete_page_and_receipts(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-edit").await;
    let thread = new_thread(&a, 30, 1, T0);
    store
        .create_thread(&thread, &[joining(&a, 1, "Bob"), joining(&a, 2, "Sue")], None)
        .await
        .unwrap();
    let mut posted = Vec::new();
    for n in 0..5 {
        let m = store
            .post(
                &thread.id,
                &ThreadChange::None,
                &text(&a, 1, &format!("m{n}")),
                T0.plus_secs(n),
            )
            .await
            .unwrap();
        posted.push(m);
    }
    // Newest first, paged by id, and from a start time.
    let ids =
        |ms: Vec<tessera_core::chat::Message>| ms.into_iter().map(|m| m.sequence_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.messages(&thread.id, None, None, 2).await.unwrap()),
        [5, 4]
    );
    assert_eq!(
        ids(store
            .messages(&thread.id, Some(posted[3].id), None, 2)
            .await
            .unwrap()),
        [3, 2]
    );
    assert_eq!(
        ids(store
            .messages(&thread.id, None, Some(T0.plus_secs(3)), 10)
            .await
            .unwrap()),
        [5, 4]
    );

    // An edit keeps the id and sequence, changes the content and takes a new, later version.
    let metadata = [("edited".to_owned(), "yes".to_owned())].into();
    let edited = store
        .edit_message(
            &thread.id,
            posted[0].id,
            "m0, edited",
            Some(&metadata),
            T0.plus_secs(100),
        )
        .await
        .unwrap();
    assert_eq!((edited.id, edited.sequence_id), (posted[0].id, 1));
    assert_eq!(edited.version, 1_700_000_100_000);
    assert_eq!(edited.edited_at, Some(T0.plus_secs(100)));
    assert_eq!(edited.body.content.message.as_deref(), Some("m0, edited"));
    assert_eq!(
        store.message(&thread.id, posted[0].id).await.unwrap(),
        Some(edited.clone())
    );
    let again = store
        .edit_message(&thread.id, posted[0].id, "m0, again", None, T0.plus_secs(100))
        .await
        .unwrap();
    assert_eq!(again.version, edited.version + 1);
    assert_eq!(again.body.metadata, metadata, "metadata kept when not given");

    // A deletion drops the content; the message answers as deleted, and cannot be edited or deleted again.
    store
        .delete_message(&thread.id, posted[1].id, T0.plus_secs(200))
        .await
        .unwrap();
    let deleted = store.message(&thread.id, posted[1].id).await.unwrap().unwrap();
    assert_eq!(deleted.deleted_at, Some(T0.plus_secs(200)));
    assert_eq!(deleted.body.content, MessageContent::default());
    assert!(matches!(
        store
            .delete_message(&thread.id, posted[1].id, T0.plus_secs(201))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .edit_message(&thread.id, posted[1].id, "x", None, T0.plus_secs(201))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .edit_message(&thread.id, 42, "x", None, T0.plus_secs(201))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // One receipt per reader, the latest wins.
    store
        .save_read_receipt(&thread.id, &member(&a, 2), posted[2].id, T0.plus_secs(300))
        .await
        .unwrap();
    store
        .save_read_receipt(&thread.id, &member(&a, 2), posted[4].id, T0.plus_secs(301))
        .await
        .unwrap();
    store
        .save_read_receipt(&thread.id, &member(&a, 1), posted[4].id, T0.plus_secs(302))
        .await
        .unwrap();
    let receipts = store.read_receipts(&thread.id, 0, 10).await.unwrap();
    assert_eq!(receipts.len(), 2);
    let sues = receipts.iter().find(|r| r.identity == member(&a, 2)).unwrap();
    assert_eq!((sues.message, sues.read_at), (posted[4].id, T0.plus_secs(301)));
    assert_eq!(store.read_receipts(&thread.id, 1, 10).await.unwrap().len(), 1);
}

async fn chat_changes_append_their_events(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-events").await;
    let thread = new_thread(&a, 40, 1, T0);
    store
        .create_thread(&thread, &[joining(&a, 1, "Bob"), joining(&a, 2, "Sue")], None)
        .await
        .unwrap();
    let start = store.last_chat_event().await.unwrap();
    let m = store
        .post(&thread.id, &ThreadChange::None, &text(&a, 1, "hi"), T0)
        .await
        .unwrap();
    store
        .edit_message(&thread.id, m.id, "hi!", None, T0.plus_secs(1))
        .await
        .unwrap();
    store
        .save_read_receipt(&thread.id, &member(&a, 2), m.id, T0.plus_secs(2))
        .await
        .unwrap();
    store
        .record_typing(&thread.id, &member(&a, 2), Some("Sue"), T0.plus_secs(3))
        .await
        .unwrap();
    store
        .delete_message(&thread.id, m.id, T0.plus_secs(4))
        .await
        .unwrap();
    store
        .delete_thread(a.id, &thread.id, T0.plus_secs(5))
        .await
        .unwrap();
    // A refused change appends nothing.
    assert!(
        store
            .delete_thread(a.id, &thread.id, T0.plus_secs(6))
            .await
            .is_err()
    );

    let events = store.chat_events_after(start, 100).await.unwrap();
    let kinds: Vec<ChatEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            ChatEventKind::MessageReceived,
            ChatEventKind::MessageEdited,
            ChatEventKind::ReadReceiptReceived,
            ChatEventKind::TypingIndicatorReceived,
            ChatEventKind::MessageDeleted,
            ChatEventKind::ChatThreadDeleted,
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(events.iter().all(|e| e.thread == thread.id));
    assert_eq!(events[0].message, Some(m.id));
    assert_eq!(events[2].identity, Some(member(&a, 2)));
    assert_eq!(events[3].display_name.as_deref(), Some("Sue"));
    assert_eq!(store.last_chat_event().await.unwrap(), events[5].seq);
    assert_eq!(
        store.chat_events_after(events[3].seq, 100).await.unwrap().len(),
        2
    );
    assert_eq!(store.purge_chat_events(T0.plus_secs(3)).await.unwrap(), 3);
    assert_eq!(store.chat_events_after(start, 100).await.unwrap().len(), 3);
}

async fn chat_events_are_read_by_audience(db: Db) {
    let store = db.store.as_ref();
    let a = comm_account(store, "chat-audience").await;
    let (ours, theirs) = (new_thread(&a, 50, 1, T0), new_thread(&a, 51, 3, T0));
    let windowed = Participant {
        share_history_from: Some(T0.plus_secs(10)),
        ..joining(&a, 2, "Sue")
    };
    store
        .create_thread(&ours, &[joining(&a, 1, "Bob"), windowed], None)
        .await
        .unwrap();
    store
        .create_thread(&theirs, &[joining(&a, 3, "Eve")], None)
        .await
        .unwrap();
    let start = store.last_chat_event().await.unwrap();
    store
        .post(
            &ours.id,
            &ThreadChange::None,
            &text(&a, 1, "ours"),
            T0.plus_secs(1),
        )
        .await
        .unwrap();
    store
        .post(
            &theirs.id,
            &ThreadChange::None,
            &text(&a, 3, "theirs"),
            T0.plus_secs(2),
        )
        .await
        .unwrap();
    let audience = store.chat_audience(&ours.id).await.unwrap().expect("a thread");
    assert_eq!(audience.deleted_at, None);
    let mut members = audience.members.clone();
    members.sort_by(|x, y| x.identity.cmp(&y.identity));
    assert_eq!(
        members,
        [
            Member {
                identity: member(&a, 1),
                share_history_from: None,
                added_at: T0
            },
            Member {
                identity: member(&a, 2),
                share_history_from: Some(T0.plus_secs(10)),
                added_at: T0
            },
        ]
    );

    // Sue's removal names her: she may still replay it, and nothing after it.
    store
        .post(
            &ours.id,
            &ThreadChange::RemoveParticipant(member(&a, 2)),
            &text(&a, 1, "bye Sue"),
            T0.plus_secs(3),
        )
        .await
        .unwrap();
    store
        .post(
            &ours.id,
            &ThreadChange::None,
            &text(&a, 1, "after"),
            T0.plus_secs(4),
        )
        .await
        .unwrap();
    let texts = |events: Vec<ChatEvent>| async move {
        let mut texts = Vec::new();
        for e in events {
            let m = store
                .message(&e.thread, e.message.unwrap())
                .await
                .unwrap()
                .unwrap();
            texts.push(m.body.content.message.unwrap());
        }
        texts
    };
    let bobs = store.chat_events_for(&member(&a, 1), start, 100).await.unwrap();
    assert_eq!(texts(bobs.clone()).await, ["ours", "bye Sue", "after"]);
    assert_eq!(
        bobs[1].identity,
        Some(member(&a, 2)),
        "the removal names whom it removed"
    );
    let sues = store.chat_events_for(&member(&a, 2), start, 100).await.unwrap();
    assert_eq!(texts(sues).await, ["bye Sue"]);
    let eves = store.chat_events_for(&member(&a, 3), start, 100).await.unwrap();
    assert_eq!(texts(eves).await, ["theirs"]);
    assert_eq!(
        store
            .chat_events_for(&member(&a, 1), bobs[1].seq, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .chat_events_for(&member(&a, 1), start, 1)
            .await
            .unwrap()
            .len(),
        1
    );

    store
        .delete_thread(a.id, &ours.id, T0.plus_secs(5))
        .await
        .unwrap();
    let audience = store.chat_audience(&ours.id).await.unwrap().expect("still known");
    assert_eq!(audience.deleted_at, Some(T0.plus_secs(5)));
    assert_eq!(audience.members.len(), 1, "its deletion still reaches Bob");
    assert_eq!(
        store.chat_audience(&new_thread(&a, 52, 1, T0).id).await.unwrap(),
        None
    );
}

async fn audit_checkpoints_are_kept_once_per_head(db: Db) {
    let store = db.store.as_ref();
    assert_eq!(
        store.audit_head().await.unwrap(),
        tessera_core::audit::Head::EMPTY
    );
    assert_eq!(store.latest_audit_checkpoint().await.unwrap(), None);
    let events: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            at: T0.plus_secs(n),
            actor: "admin".into(),
            action: "test".into(),
            subject: format!("s{n}"),
            outcome: Outcome::Success,
            details: "{}".into(),
            isv: None,
        })
        .collect();
    let appended = store.append_audit(events).await.unwrap();
    let head = store.audit_head().await.unwrap();
    assert_eq!((head.seq, head.hash), (3, appended[2].hash));
    let checkpoint = |seq: i64, token: &str| tessera_store::AuditCheckpoint {
        seq,
        head: format!("head-{seq}"),
        token: token.to_owned(),
        created_at: T0.plus_secs(seq),
    };
    store.add_audit_checkpoint(&checkpoint(2, "first")).await.unwrap();
    store
        .add_audit_checkpoint(&checkpoint(3, "second"))
        .await
        .unwrap();
    // Another node checkpointing the same head: kept once, the first.
    store.add_audit_checkpoint(&checkpoint(3, "again")).await.unwrap();
    assert_eq!(
        store.latest_audit_checkpoint().await.unwrap(),
        Some(checkpoint(3, "second"))
    );
    assert_eq!(
        store.audit_checkpoints(0, 10).await.unwrap(),
        [checkpoint(2, "first"), checkpoint(3, "second")]
    );
    assert_eq!(
        store.audit_checkpoints(2, 10).await.unwrap(),
        [checkpoint(3, "second")]
    );
    assert_eq!(store.audit_checkpoints(0, 1).await.unwrap().len(), 1);
}
