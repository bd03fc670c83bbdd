-- A project's name is unique in its namespace, ignoring case, as the check before an INSERT or a
-- rename says (Project validates :name, uniqueness: { scope: :namespace_id }). The check alone let
-- concurrent creations with one name all through; the index refuses all but the first, whose
-- refusal service/errors.py answers as the check would have. A database holding such a pair from
-- before fails this migration with both rows named: rename one of them, then migrate again.
CREATE UNIQUE INDEX index_projects_on_namespace_and_lower_name ON projects (namespace_id, lower(name));
