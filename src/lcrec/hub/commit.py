"""One push = one commit: stage the complete repo in a temporary folder, then make the Hub revision hold exactly it.

A push that fails midway changes nothing remotely and can simply be rerun (an unchanged rerun commits nothing).
`dry_run_dir` writes the staged folder instead of uploading it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..io_utils import atomic_dir, check_output_dir

logger = logging.getLogger(__name__)

PUSH_COMMAND = "push"


@dataclass
class StagedRepo:
    """What a push uploads: the staged folder's files, and what the source had that is not published."""

    repo_id: str
    repo_type: str
    files: list[str]
    skipped: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    """Where a push went: `commit` (huggingface_hub's CommitInfo, a str of the commit URL) is None for a dry run,
    which fills `folder` instead."""

    repo_id: str
    repo_type: str
    revision: str
    files: list[str]
    commit: object | None = None
    folder: Path | None = None

    @property
    def commit_url(self) -> str | None:
        return None if self.commit is None else str(self.commit)


def folder_listing(folder: str | os.PathLike) -> list[str]:
    """Every file under `folder`, as sorted POSIX paths relative to it."""
    folder = Path(folder)
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload with lcrec",
    commit_description: str | None = None,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
):
    """Make the repo's `revision` hold exactly `folder` (besides `.gitattributes`) in one commit.

    Returns huggingface_hub's CommitInfo. Files the folder does not have are deleted from the revision in the same
    commit, so a repo never mixes two pushes.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(folder)
    api = HfApi(endpoint=endpoint, token=token)
    repo_id = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True).repo_id
    if revision is not None and not create_pr:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    local = folder_listing(folder)
    remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
    operations = [CommitOperationDelete(path) for path in remote if path not in local and path != ".gitattributes"]
    operations += [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in local]
    return api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message,
        commit_description=commit_description,
        repo_type=repo_type,
        revision=revision,
        create_pr=create_pr,
    )


def push_staged(
    stage: Callable[[Path], StagedRepo],
    repo_id: str,
    repo_type: str,
    *,
    sources: Iterable[str | os.PathLike | None] = (),
    revision: str | None = None,
    private: bool | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    commit_message: str,
    commit_description: str | None = None,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Run `stage(folder)` into a temporary folder, then upload it (or move it to `dry_run_dir`).

    `sources` (the folders the stage reads) are only read; a dry-run folder may not be or hold one of them.
    """
    if dry_run_dir is not None:
        check_output_dir(dry_run_dir, PUSH_COMMAND, inputs=sources, overwrite=overwrite)
        with atomic_dir(dry_run_dir, command=PUSH_COMMAND) as tmp:
            staged = stage(tmp)
        return PushResult(repo_id, repo_type, revision or "main", staged.files, folder=Path(dry_run_dir))
    with tempfile.TemporaryDirectory(prefix="lcrec-push-") as tmp:
        staged = stage(Path(tmp))
        commit = push_folder(
            tmp,
            repo_id,
            repo_type,
            revision=revision,
            private=private,
            commit_message=commit_message,
            commit_description=commit_description,
            create_pr=create_pr,
            token=token,
            endpoint=endpoint,
        )
    logger.info("pushed %d files to %s", len(staged.files), commit)
    return PushResult(repo_id, repo_type, revision or "main", staged.files, commit=commit)
