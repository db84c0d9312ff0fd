"""Package Files: the files of the package registry (GitLab's
`Packages::PackageFile`), replicated and verified by checksum.

The whole declaration: the model `packages_package_files` on the primary,
which keeps its verification state in columns of its own (template
option 1), the registry on secondaries and the replicator. The tables are
created by the migrations `primary/0002` and `tracking/0006`.
"""
from __future__ import annotations

from backend.db.base import PrimaryBase, TrackingBase
from backend.framework.columns import make_blob_model, make_registry_model
from backend.framework.replicator import Replicator, VerificationStorage, register

PackageFile = make_blob_model(PrimaryBase, "PackageFile", "packages_package_files",
                              verification_on_model=True)
PackageFileRegistry = make_registry_model(TrackingBase, "package_file")


@register
class PackageFileReplicator(Replicator):
    model = PackageFile
    registry = PackageFileRegistry
    verification = VerificationStorage.on_model(PackageFile)
    # A package file is written once; a new version is a new file.
    mutable = False
    uploader_class = "Packages::PackageFileUploader"
    since = "0.2"
