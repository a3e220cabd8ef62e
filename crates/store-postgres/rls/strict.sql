-- RLS mode "strict" (after rls/clear.sql): a row is visible and writable only inside
-- its own tenant's context. A transaction without context fails (tenantry_org()
-- raises), it never matches every row. API keys are further restricted by
-- delegation: a principal that may not manage the org's keys sees only the keys of
-- its effective principals (app.principals: itself and, for an agent, the user it
-- acts for), via = ANY(...).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_keys','users','agents','api_keys','installs','secrets','bindings','kv','usage_events','audit'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I FOR ALL '
            'USING (org_id = tenantry_org()) WITH CHECK (org_id = tenantry_org())', t);
    END LOOP;
END $$;
CREATE POLICY key_delegation ON api_keys AS RESTRICTIVE FOR ALL
    USING (tenantry_keys_scope() = 'org' OR principal_id = ANY (tenantry_principals()))
    WITH CHECK (tenantry_keys_scope() = 'org' OR principal_id = ANY (tenantry_principals()));
UPDATE rls_mode SET mode = 'strict';
