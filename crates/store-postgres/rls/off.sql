-- RLS mode "off" (after rls/clear.sql): no policies; isolation rests on the explicit
-- `WHERE org_id = $1` alone.
UPDATE rls_mode SET mode = 'off';
