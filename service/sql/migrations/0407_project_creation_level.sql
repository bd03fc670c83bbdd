-- Who may create projects in a group (Group#project_creation_level, GitLab's Gitlab::Access
-- *_PROJECT_ACCESS values: 0 no one, 1 maintainers, 2 developers and maintainers, 3 administrators,
-- 4 owners). NULL: the instance's default_project_creation, whose default is GitLab's (2).
ALTER TABLE namespaces ADD COLUMN project_creation_level smallint
    CHECK (project_creation_level BETWEEN 0 AND 4);
ALTER TABLE application_settings ADD COLUMN default_project_creation smallint NOT NULL DEFAULT 2
    CHECK (default_project_creation BETWEEN 0 AND 4);
