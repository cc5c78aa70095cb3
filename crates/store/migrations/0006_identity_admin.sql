-- Keystone admin subset (`/v3/projects`, `/v3/users`, role grants). Portable SQL
-- (SQLite and PostgreSQL), like 0001.
--
-- `extra`: the attributes a client sends beyond the stored columns (a user's
-- `email` and `description`, any other key), kept as one JSON object, as
-- Keystone keeps them. `default_project_id`: Keystone's user attribute (it
-- grants nothing; a token asked for without a scope prefers it).
ALTER TABLE users ADD COLUMN default_project_id TEXT;
ALTER TABLE users ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
ALTER TABLE projects ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';

-- The bootstrap admin (`serve --admin-user/--admin-project`): one row, written
-- at every start. Its user and project can't be deleted or disabled and its
-- grant can't be revoked through any API, so an operator can't lock
-- themselves out; the foreign keys make the database refuse the delete too.
CREATE TABLE bootstrap_admin (
    name TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    role TEXT NOT NULL
);

-- Revocation by user (disable, delete, password change) and by user and
-- project (role removal) finds the tokens by index.
CREATE INDEX tokens_user_project ON tokens (user_id, project_id);
