-- written by `python -m registry.db.migrate` from the migrations up to 0009: do not edit
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE blobs (
	digest VARCHAR(200) NOT NULL, 
	size BIGINT NOT NULL, 
	created_at DATETIME NOT NULL, protected_until DATETIME, 
	CONSTRAINT pk_blobs PRIMARY KEY (digest)
);
CREATE TABLE repositories (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	created_at DATETIME NOT NULL, tags_version BIGINT DEFAULT '0' NOT NULL, 
	CONSTRAINT pk_repositories PRIMARY KEY (id), 
	CONSTRAINT uq_repositories_name UNIQUE (name)
);
CREATE TABLE uploads (
	id VARCHAR(36) NOT NULL, 
	repository_name VARCHAR(255) NOT NULL, 
	size BIGINT NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	lease VARCHAR(36), 
	leased_at DATETIME, hash_state BLOB, 
	CONSTRAINT pk_uploads PRIMARY KEY (id)
);
CREATE INDEX ix_uploads_updated_at ON uploads (updated_at);
CREATE TABLE manifests (
	id INTEGER NOT NULL, 
	repository_id INTEGER NOT NULL, 
	digest VARCHAR(200) NOT NULL, 
	media_type VARCHAR(255) NOT NULL, 
	artifact_type VARCHAR(255), 
	subject_digest VARCHAR(200), 
	annotations TEXT, 
	size BIGINT NOT NULL, 
	payload BLOB NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_manifests PRIMARY KEY (id), 
	CONSTRAINT fk_manifests_repository_id_repositories FOREIGN KEY(repository_id) REFERENCES repositories (id) ON DELETE CASCADE
);
CREATE INDEX ix_manifests_repository_id_subject_digest ON manifests (repository_id, subject_digest);
CREATE UNIQUE INDEX uq_manifests_repository_id_digest ON manifests (repository_id, digest);
CREATE TABLE repository_blobs (
	repository_id INTEGER NOT NULL, 
	blob_digest VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_repository_blobs PRIMARY KEY (repository_id, blob_digest), 
	CONSTRAINT fk_repository_blobs_blob_digest_blobs FOREIGN KEY(blob_digest) REFERENCES blobs (digest), 
	CONSTRAINT fk_repository_blobs_repository_id_repositories FOREIGN KEY(repository_id) REFERENCES repositories (id) ON DELETE CASCADE
);
CREATE INDEX ix_repository_blobs_blob_digest ON repository_blobs (blob_digest);
CREATE TABLE manifest_blobs (
	manifest_id INTEGER NOT NULL, 
	blob_digest VARCHAR(200) NOT NULL, 
	CONSTRAINT pk_manifest_blobs PRIMARY KEY (manifest_id, blob_digest), 
	CONSTRAINT fk_manifest_blobs_blob_digest_blobs FOREIGN KEY(blob_digest) REFERENCES blobs (digest), 
	CONSTRAINT fk_manifest_blobs_manifest_id_manifests FOREIGN KEY(manifest_id) REFERENCES manifests (id) ON DELETE CASCADE
);
CREATE INDEX ix_manifest_blobs_blob_digest ON manifest_blobs (blob_digest);
CREATE TABLE manifest_references (
	parent_id INTEGER NOT NULL, 
	child_id INTEGER NOT NULL, 
	CONSTRAINT pk_manifest_references PRIMARY KEY (parent_id, child_id), 
	CONSTRAINT fk_manifest_references_child_id_manifests FOREIGN KEY(child_id) REFERENCES manifests (id) ON DELETE CASCADE, 
	CONSTRAINT fk_manifest_references_parent_id_manifests FOREIGN KEY(parent_id) REFERENCES manifests (id) ON DELETE CASCADE
);
CREATE INDEX ix_manifest_references_child_id ON manifest_references (child_id);
CREATE TABLE tags (
	id INTEGER NOT NULL, 
	repository_id INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	manifest_id INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_tags PRIMARY KEY (id), 
	CONSTRAINT fk_tags_manifest_id_manifests FOREIGN KEY(manifest_id) REFERENCES manifests (id) ON DELETE CASCADE, 
	CONSTRAINT fk_tags_repository_id_repositories FOREIGN KEY(repository_id) REFERENCES repositories (id) ON DELETE CASCADE
);
CREATE INDEX ix_tags_manifest_id ON tags (manifest_id);
CREATE UNIQUE INDEX uq_tags_repository_id_name ON tags (repository_id, name);
CREATE TRIGGER tags_version_insert AFTER INSERT ON tags BEGIN UPDATE repositories SET tags_version = tags_version + 1 WHERE id = NEW.repository_id; END;
CREATE TRIGGER tags_version_update AFTER UPDATE ON tags BEGIN UPDATE repositories SET tags_version = tags_version + 1 WHERE id IN (OLD.repository_id, NEW.repository_id); END;
CREATE TRIGGER tags_version_delete AFTER DELETE ON tags BEGIN UPDATE repositories SET tags_version = tags_version + 1 WHERE id = OLD.repository_id; END;
CREATE TABLE gc_blob_reviews (
	digest VARCHAR(200) NOT NULL, 
	review_after DATETIME NOT NULL, 
	queued_at DATETIME NOT NULL, 
	event VARCHAR(32) NOT NULL, 
	claimed_by VARCHAR(36), 
	CONSTRAINT pk_gc_blob_reviews PRIMARY KEY (digest)
);
CREATE INDEX ix_gc_blob_reviews_review_after ON gc_blob_reviews (review_after);
CREATE TABLE gc_manifest_reviews (
	manifest_id INTEGER NOT NULL, 
	review_after DATETIME NOT NULL, 
	queued_at DATETIME NOT NULL, 
	event VARCHAR(32) NOT NULL, 
	claimed_by VARCHAR(36), 
	CONSTRAINT pk_gc_manifest_reviews PRIMARY KEY (manifest_id), 
	CONSTRAINT fk_gc_manifest_reviews_manifest_id_manifests FOREIGN KEY(manifest_id) REFERENCES manifests (id) ON DELETE CASCADE
);
CREATE INDEX ix_gc_manifest_reviews_review_after ON gc_manifest_reviews (review_after);
CREATE TABLE gc_blob_deletions (
	digest VARCHAR(200) NOT NULL, 
	started_at DATETIME NOT NULL, 
	CONSTRAINT pk_gc_blob_deletions PRIMARY KEY (digest)
);
CREATE INDEX ix_tags_repository_id_updated_at ON tags (repository_id, updated_at);
CREATE TABLE storage_binding (
	id INTEGER NOT NULL, 
	driver VARCHAR(32) NOT NULL, 
	bucket VARCHAR(255), 
	endpoint VARCHAR(1024), 
	rootdirectory VARCHAR(4096) NOT NULL, 
	created_at DATETIME NOT NULL, 
	imported_at DATETIME, 
	CONSTRAINT pk_storage_binding PRIMARY KEY (id)
);
CREATE TABLE event_outbox (
	id INTEGER NOT NULL, 
	endpoint VARCHAR(255) NOT NULL, 
	payload TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	due_at DATETIME NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	claimed_by VARCHAR(36), 
	CONSTRAINT pk_event_outbox PRIMARY KEY (id)
);
CREATE INDEX ix_event_outbox_endpoint_due_at ON event_outbox (endpoint, due_at);
CREATE TABLE scheduled_jobs (
	name VARCHAR(64) NOT NULL, 
	due_at DATETIME NOT NULL, 
	CONSTRAINT pk_scheduled_jobs PRIMARY KEY (name)
);
CREATE TABLE gc_last_run (
	id INTEGER NOT NULL, 
	finished_at DATETIME NOT NULL, 
	seconds FLOAT NOT NULL, 
	runner VARCHAR(255) NOT NULL, 
	manifests INTEGER NOT NULL, 
	blobs INTEGER NOT NULL, 
	bytes_freed BIGINT NOT NULL, 
	links_removed INTEGER NOT NULL, 
	reviews INTEGER NOT NULL, 
	CONSTRAINT pk_gc_last_run PRIMARY KEY (id)
);
INSERT INTO alembic_version (version_num) VALUES ('0009');
