//! One million identities in one SQLite file: every lookup the token paths make (by id, by name, a page after
//! a cursor, revocation) still answers correctly, and each is an index search, never a table scan, so its cost
//! does not grow with the table. Timings are the benchmark's job (`cargo xtask bench`); this test pins the plans.

use sqlx::{Connection, Row};
use tessera_core::identity::{IdentityId, IdentityKind, IdentityName};
use tessera_core::{Account, FlagSet, KeyGenerations, ResourceId, Timestamp};
use uuid::Uuid;

const IDENTITIES: u128 = 1_000_000;
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn user(account: Uuid, n: u128) -> IdentityId {
    IdentityId::new(
        account,
        Uuid::from_u128((n << 96) | (0x4000 << 64) | (0x8000 << 48) | n),
    )
}

fn name(n: u128) -> IdentityName {
    IdentityName::parse(&format!("user{n}@scale.example"), IdentityKind::Human).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_identities_are_found_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let url = tessera_testkit::sqlite_url(dir.path());
    let store = tessera_store::open(&url).await.unwrap();
    let account = Account {
        id: Uuid::new_v4(),
        resource_id: ResourceId::parse(
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.Communication/communicationServices/scale",
        )
        .unwrap(),
        approved_flags: FlagSet::default(),
        isv: None,
        disabled: false,
        tokens_revoked_at: None,
        isv_tokens_revoked_at: None,
        user_tokens_revoked_at: None,
        key_generations: KeyGenerations::default(),
        created_at: T0,
    };
    store.create_account(&account, &[], T0).await.unwrap();

    // Bulk-load the rows beside the store (the same shape `create_identity` writes).
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let inserted = sqlx::query(
        "INSERT INTO identities (id, account_id, name, kind, created_at, revocation)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         SELECT '8:acs:' || ?2 || '_' || printf('%08x-0000-4000-8000-0000%08x', i, i),
                ?2, 'user' || i || '@scale.example', 'human', ?3, 0
         FROM n",
    )
    .bind(IDENTITIES as i64)
    .bind(account.id.to_string())
    .bind(T0.millis())
    .execute(&mut raw)
    .await
    .unwrap();
    assert_eq!(u128::from(inserted.rows_affected()), IDENTITIES);

    for n in [1, 4242, IDENTITIES / 2, IDENTITIES] {
        let id = user(account.id, n);
        let found = store.identity(&id).await.unwrap().expect("found by id");
        assert_eq!(found.name, Some(name(n)));
        let by_name = store
            .identity_by_name(account.id, &name(n))
            .await
            .unwrap()
            .expect("found by name");
        assert_eq!(by_name.id, id);
    }
    let last = store
        .list_identities(account.id, Some(&user(account.id, IDENTITIES - 1)), 10)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].id, user(account.id, IDENTITIES));
    let revoked = store
        .revoke_identity_tokens(&user(account.id, 777))
        .await
        .unwrap();
    assert_eq!(revoked.revocation, 1);

    // The store's statements on this table, as the query planner runs them.
    for sql in [
        "EXPLAIN QUERY PLAN SELECT * FROM identities WHERE id = ?",
        "EXPLAIN QUERY PLAN SELECT * FROM identities WHERE account_id = ? AND name = ? AND deleted_at IS NULL",
        "EXPLAIN QUERY PLAN SELECT * FROM identities WHERE account_id = ? AND id > ? AND deleted_at IS NULL ORDER BY id LIMIT ?",
        "EXPLAIN QUERY PLAN UPDATE identities SET revocation = revocation + 1 WHERE id = ? AND deleted_at IS NULL RETURNING *",
    ] {
        let plan: Vec<String> = sqlx::query(sql)
            .fetch_all(&mut raw)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN"))
                && plan
                    .iter()
                    .any(|step| step.starts_with("SEARCH") && step.contains("INDEX")),
            "{sql}: {plan:?}"
        );
    }
}
