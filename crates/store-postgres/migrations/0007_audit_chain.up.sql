-- Audit entries form a hash chain per org (tenantry_store::chain): the append
-- function takes each entry's content hash (computed by the application, a_content)
-- and links it to the org's last entry under the org's write lock:
--   row_hash = sha256(prev_hash || int8send(seq) || content_hash)
-- with 32 zero bytes as the prev_hash of an org's first chained entry (or of the
-- first after entries written before this migration, which have no hashes).
DROP FUNCTION tenantry_append_records;

CREATE FUNCTION tenantry_append_records(
    orgs uuid[], u_n int[], a_n int[],
    u_id uuid[], u_at timestamptz[], u_install uuid[], u_plugin text[], u_action text[],
    u_actor_kind text[], u_actor uuid[], u_outcome text[], u_duration int8[], u_fuel int8[],
    u_memory int8[], u_calls int8[], u_in int8[], u_out int8[], u_caller uuid[],
    a_at timestamptz[], a_actor_kind text[], a_actor uuid[], a_action text[], a_target text[],
    a_outcome text[], a_request uuid[], a_details text[], a_content bytea[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    org uuid;
    uf int := 1;
    af int := 1;
    ut int;
    at_ int;
    h_seq bigint;
    h_prev bytea;
    h_row bytea;
BEGIN
    FOR i IN 1 .. coalesce(array_length(orgs, 1), 0) LOOP
        org := orgs[i];
        PERFORM set_config('app.org_id', org::text, true);
        PERFORM pg_advisory_xact_lock(hashtextextended(org::text, 0));
        ut := uf + u_n[i] - 1;
        at_ := af + a_n[i] - 1;
        IF u_n[i] > 0 THEN
            INSERT INTO usage_events (org_id, id, at, install_id, plugin, action, actor_kind,
                actor_id, outcome, duration_us, fuel, peak_memory_bytes, host_calls, bytes_in,
                bytes_out, caller_id)
            SELECT org, * FROM UNNEST(u_id[uf:ut], u_at[uf:ut], u_install[uf:ut],
                u_plugin[uf:ut], u_action[uf:ut], u_actor_kind[uf:ut], u_actor[uf:ut],
                u_outcome[uf:ut], u_duration[uf:ut], u_fuel[uf:ut], u_memory[uf:ut],
                u_calls[uf:ut], u_in[uf:ut], u_out[uf:ut], u_caller[uf:ut]);
        END IF;
        IF a_n[i] > 0 THEN
            SELECT a.seq, a.row_hash INTO h_seq, h_prev FROM audit a
                WHERE a.org_id = org ORDER BY a.seq DESC LIMIT 1;
            h_seq := coalesce(h_seq, 0);
            h_prev := coalesce(h_prev, decode(repeat('00', 32), 'hex'));
            FOR j IN af .. at_ LOOP
                h_seq := h_seq + 1;
                h_row := sha256(h_prev || int8send(h_seq) || a_content[j]);
                INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target,
                    outcome, request_id, details, prev_hash, row_hash)
                VALUES (org, h_seq, a_at[j], a_actor_kind[j], a_actor[j], a_action[j],
                    a_target[j], a_outcome[j], a_request[j], a_details[j]::jsonb, h_prev, h_row);
                h_prev := h_row;
            END LOOP;
        END IF;
        uf := ut + 1;
        af := at_ + 1;
    END LOOP;
END $$;
