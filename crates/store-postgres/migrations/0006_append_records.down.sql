DROP FUNCTION IF EXISTS tenantry_append_records;
