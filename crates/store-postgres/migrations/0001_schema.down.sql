DROP TABLE IF EXISTS rls_mode, rls_violations, audit, usage_events, kv, bindings, secrets,
    installs, api_keys, agents, users, org_keys, artifacts, reviews, plugin_versions,
    plugins, publisher_keys, publishers, key_index, operator_keys, orgs CASCADE;
DROP FUNCTION IF EXISTS tenantry_org_lenient(), tenantry_rls_violation(text, text, uuid),
    tenantry_audit_append_only(), tenantry_keys_scope(), tenantry_principals(), tenantry_org();
