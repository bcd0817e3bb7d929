-- Communication accounts' access keys, sealed under the master key: ACS HMAC needs the key itself, not a hash.

ALTER TABLE account_keys ADD COLUMN sealed_key BLOB;
