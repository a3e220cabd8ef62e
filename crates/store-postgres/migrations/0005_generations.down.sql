DROP TRIGGER IF EXISTS kept_users ON users;
DROP TRIGGER IF EXISTS kept_agents ON agents;
DROP TRIGGER IF EXISTS kept_api_keys ON api_keys;
DROP TRIGGER IF EXISTS kept_installs ON installs;
DROP TRIGGER IF EXISTS kept_bindings ON bindings;
DROP TRIGGER IF EXISTS kept_orgs ON orgs;
DROP TRIGGER IF EXISTS kept_publisher_keys ON publisher_keys;
DROP FUNCTION IF EXISTS tenantry_bump();
DROP TABLE IF EXISTS generations;
