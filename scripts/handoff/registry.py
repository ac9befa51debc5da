"""What a model package tells whoever deploys it: its approval statuses and its CustomerMetadataProperties keys (the
detector, the execution that registered it, its model, and whether the pipeline deployed it itself)."""

from __future__ import annotations

APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"
APPROVAL_STATUSES = (APPROVED, PENDING, REJECTED)

DETECTOR_PROPERTY = "seclake:detector"  # detector.npz of the run
EXECUTION_PROPERTY = "seclake:execution"  # the execution that registered it: its endpoint config and manifest
MODEL_PROPERTY = "seclake:model"  # the SageMaker model the execution created for it
REGISTERED_AS_PROPERTY = "seclake:registered-as"  # its approval status at registration: Approved was deployed then
