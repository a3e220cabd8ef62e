DROP FUNCTION tenantry_append_records;

CREATE FUNCTION tenantry_append_records(
    orgs uuid[], u_n int[], a_n int[],
    u_id uuid[], u_at timestamptz[], u_install uuid[], u_plugin text[], u_action text[],
    u_actor_kind text[], u_actor uuid[], u_outcome text[], u_duration int8[], u_fuel int8[],
    u_memory int8[], u_calls int8[], u_in int8[], u_out int8[], u_caller uuid[],
    a_at timestamptz[], a_actor_kind text[], a_actor uuid[], a_action text[], a_target text[],
    a_outcome text[], a_request uuid[], a_details text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    org uuid;
    uf int := 1;
    af int := 1;
    ut int;
    at_ int;
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
            INSERT INTO audit (org_id, seq, at, actor_kind, actor_id, action, target, outcome,
                request_id, details)
            SELECT org, (SELECT COALESCE(MAX(seq), 0) FROM audit WHERE org_id = org) + e.n,
                e.at, e.actor_kind, e.actor_id, e.action, e.target, e.outcome, e.request_id,
                e.details::jsonb
            FROM UNNEST(a_at[af:at_], a_actor_kind[af:at_], a_actor[af:at_], a_action[af:at_],
                a_target[af:at_], a_outcome[af:at_], a_request[af:at_], a_details[af:at_])
                WITH ORDINALITY
                AS e(at, actor_kind, actor_id, action, target, outcome, request_id, details, n);
        END IF;
        uf := ut + 1;
        af := at_ + 1;
    END LOOP;
END $$;
