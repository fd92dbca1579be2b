"""Background ingestion jobs: one per document sent over HTTP, kept in SQL.

A job is claimed with a conditional UPDATE, so several API replicas sharing a
database (and a data volume) never run one twice. A job left ``running`` by a
process that died is queued again at start; one that keeps failing for a
transient reason (another writer holds the collection) stops after
``max_attempts``; an unreadable document fails at once with its reason.

Upload metadata over the limits is refused by ``submit`` (a ValueError, before
any job exists). The file is read in a child process with a time and memory
budget (``indexer/sandbox.py``), so a bomb fails its own job and no other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from indexer.limits import ReadLimits
from indexer.metadata_limits import validate_metadata
from indexer.pipeline import Indexer, IndexReport
from indexer.sandbox import budget_for, warm_up
from indexer.uploads import UploadPayload, load_payload, read_upload, remove_upload, save_upload
from rag.collections.catalog import CollectionCatalog
from rag.errors import RAGError
from rag.storage import database
from rag.storage.models import IngestionJob, utcnow

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed"]
QUEUED: JobStatus = "queued"
RUNNING: JobStatus = "running"
SUCCEEDED: JobStatus = "succeeded"
FAILED: JobStatus = "failed"


@dataclass(frozen=True)
class JobInfo:
    id: str
    collection: str
    source: str
    status: JobStatus
    stage: str
    attempts: int
    report: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


def _info(job: IngestionJob) -> JobInfo:
    return JobInfo(
        id=job.id,
        collection=job.collection,
        source=job.source,
        status=cast(JobStatus, job.status),  # written only from the constants above
        stage=job.stage,
        attempts=job.attempts,
        report=job.report,
        error=job.error,
        created_at=job.created_at.isoformat(),
        started_at=job.started_at.isoformat() if job.started_at else None,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
    )


class IngestionJobs:
    def __init__(self, catalog: CollectionCatalog, uploads_dir: Path, max_attempts: int) -> None:
        self.catalog = catalog
        self.sessions = catalog.shared.sessions
        self.uploads_dir = uploads_dir
        self.max_attempts = max_attempts
        self.limits = ReadLimits.from_settings(catalog.settings.indexing)
        self.budget = budget_for(catalog.settings.indexing, uploads=True)
        if self.budget:
            warm_up()

    def submit(
        self,
        collection: str,
        payload: UploadPayload,
        content: bytes | None = None,
        text: str | None = None,
    ) -> JobInfo:
        """Save the upload and queue its job; raises ``MetadataLimitError`` (a ValueError) first
        if the metadata is over the limits."""
        validate_metadata(payload.metadata, self.limits.metadata)
        job_id = uuid.uuid4().hex
        save_upload(self.uploads_dir / job_id, payload, content, text)
        job = IngestionJob(
            id=job_id,
            collection=collection,
            source=payload.source,
            status=QUEUED,
            stage="queued",
            attempts=0,
        )
        with database.session_scope(self.sessions) as session:
            session.add(job)
            session.flush()
            return _info(job)

    def get(self, job_id: str) -> JobInfo | None:
        with database.session_scope(self.sessions) as session:
            job = session.get(IngestionJob, job_id)
            return _info(job) if job else None

    def pending(self) -> list[str]:
        """Jobs to run at start: this replica's queued ones, and its running ones that a dead
        process left behind. A job belongs to the replica whose data dir holds its upload;
        replicas share no volume, so another replica's jobs are never claimed (or requeued)
        here: they wait for their own replica to come back."""
        with database.session_scope(self.sessions) as session:
            rows = session.execute(
                select(IngestionJob.id, IngestionJob.status)
                .where(IngestionJob.status.in_([QUEUED, RUNNING]))
                .order_by(IngestionJob.created_at)
            ).all()
            mine = [job_id for job_id, _ in rows if (self.uploads_dir / job_id).is_dir()]
            interrupted = [
                job_id for job_id, status in rows if status == RUNNING and job_id in mine
            ]
            if interrupted:
                session.execute(
                    update(IngestionJob)
                    .where(IngestionJob.id.in_(interrupted), IngestionJob.status == RUNNING)
                    .values(status=QUEUED, stage="requeued")
                )
            return mine

    def run(self, job_id: str) -> JobInfo | None:
        """Run one job to its end; returns None when another worker claimed it first."""
        if not self._claim(job_id):
            return None
        job = self.get(job_id)
        assert job is not None
        folder = self.uploads_dir / job_id
        try:
            payload = load_payload(folder)
        except (OSError, ValueError) as exc:
            return self._finish(job_id, FAILED, None, f"the uploaded data is gone: {exc}")
        try:
            report = self._index(job, folder, payload, lambda stage: self._stage(job_id, stage))
        except (RAGError, OperationalError) as exc:  # transient: another writer, a database hiccup
            logger.warning("job %s attempt %d failed: %s", job_id, job.attempts, exc)
            if job.attempts < self.max_attempts:
                return self._set(job_id, status=QUEUED, stage="retrying", error=str(exc))
            return self._finish(
                job_id, FAILED, None, f"gave up after {job.attempts} attempts: {exc}"
            )
        except Exception as exc:
            logger.exception("job %s failed", job_id)
            return self._finish(job_id, FAILED, None, f"{type(exc).__name__}: {exc}")
        failed = report.failed and not (report.added or report.updated or report.unchanged)
        error = "; ".join(f"{path}: {reason}" for path, reason in report.failed) or None
        return self._finish(job_id, FAILED if failed else SUCCEEDED, report.as_dict(), error)

    def _index(
        self, job: JobInfo, folder: Path, payload: UploadPayload, on_stage: Callable[[str], None]
    ) -> IndexReport:
        report = IndexReport(files=1)
        on_stage("reading")
        documents, problems = read_upload(folder, payload, self.limits, self.budget)
        report.failed.extend(problems)
        if not documents:
            return report
        store = self.catalog.writable_store(job.collection)
        try:
            on_stage("embedding")
            Indexer(store).index_documents(documents, report)
        finally:
            store.close()
        return report

    def _claim(self, job_id: str) -> bool:
        with database.session_scope(self.sessions) as session:
            claimed = session.execute(
                update(IngestionJob)
                .where(IngestionJob.id == job_id, IngestionJob.status == QUEUED)
                .values(
                    status=RUNNING,
                    stage="starting",
                    started_at=utcnow(),
                    attempts=IngestionJob.attempts + 1,
                )
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    def _stage(self, job_id: str, stage: str) -> None:
        self._set(job_id, stage=stage)

    def _set(self, job_id: str, **values: Any) -> JobInfo | None:
        with database.session_scope(self.sessions) as session:
            job = session.get(IngestionJob, job_id)
            if job is None:
                return None
            for key, value in values.items():
                setattr(job, key, value)
            session.flush()
            return _info(job)

    def _finish(
        self, job_id: str, status: str, report: dict[str, Any] | None, error: str | None
    ) -> JobInfo | None:
        remove_upload(self.uploads_dir / job_id)
        return self._set(
            job_id, status=status, stage="done", report=report, error=error, finished_at=utcnow()
        )
