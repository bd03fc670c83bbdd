-- A search term as an ILIKE pattern matching names that contain it, its wildcards taken literally
-- (GitLab: "%#{sanitize_sql_like(term)}%"): a search for "%" or "_" must not match every name.
CREATE FUNCTION contains_pattern(term text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT '%' || replace(replace(replace(term, '\', '\\'), '%', '\%'), '_', '\_') || '%' $$;
