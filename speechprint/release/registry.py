"""The model registry's look-ups for promotion: a missing model, version or alias is an answer
(None, or created); a registry that does not answer is a ``ServiceError`` that says nothing moved."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from speechprint.core.errors import ServiceError
from speechprint.tracking import store as tracking


def not_found(error: Exception) -> bool:
    """Whether a registry look-up failed because the model, version or alias does not exist;
    anything else (a server that is down, a database that is locked) is not an answer."""
    from mlflow.exceptions import MlflowException

    if not isinstance(error, MlflowException):
        return False
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    # A missing alias: MLflow says INVALID_PARAMETER_VALUE, "... alias champion not found."
    return error.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(error)


def registry_error(what: str, error: Exception) -> ServiceError:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ServiceError(
        f"model registry at {tracking.tracking_uri()}: cannot {what}: {first}; nothing was "
        "moved, run the same command again once the registry answers"
    )


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except Exception as error:  # noqa: BLE001 - sorted by _not_found
        if not not_found(error):
            raise registry_error(f"look up registered model {name!r}", error) from error
        client.create_registered_model(
            name, description="SpeechPrint accent classifier: audio in, region probabilities out."
        )


def version_of_run(client: MlflowClient, name: str, run_id: str) -> Any | None:
    try:
        versions = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except Exception as error:  # noqa: BLE001 - sorted by _not_found
        if not not_found(error):
            raise registry_error(f"search the versions of {name!r}", error) from error
        return None
    return versions[0] if versions else None


def alias_holder(client: MlflowClient, name: str, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception as error:  # noqa: BLE001 - sorted by _not_found
        if not not_found(error):
            raise registry_error(f"look up who holds {alias!r} of {name!r}", error) from error
        return None
