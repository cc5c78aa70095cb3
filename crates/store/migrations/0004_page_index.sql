-- Keyset pagination (store::page): a page is "the rows after the marker in
-- (created_at, id) order" within one kind (and one project for a member), read
-- through this index instead of sorting the kind's rows.
DROP INDEX resources_kind_project;
CREATE INDEX resources_kind_project_created ON resources (kind, project_id, created_at, id);
CREATE INDEX resources_kind_created ON resources (kind, created_at, id);
