"""The Airflow release the suite runs on, and markers for tests that only apply to some releases.

CI runs the whole suite twice: on the newest Airflow and on the oldest 3.x the package claims.
"""

from __future__ import annotations

import airflow
import pytest
from packaging.version import Version

AIRFLOW_VERSION = Version(airflow.__version__)
AIRFLOW_3_2_PLUS = AIRFLOW_VERSION.release[:2] >= (3, 2)
AIRFLOW_3_3_PLUS = AIRFLOW_VERSION.release[:2] >= (3, 3)


def requires_airflow_3_3(feature: str) -> pytest.MarkDecorator:
    """Skip a test of ``feature`` on Airflow releases that don't have it yet."""
    return pytest.mark.skipif(
        not AIRFLOW_3_3_PLUS, reason=f"{feature} is new in Airflow 3.3 (running {airflow.__version__})"
    )


def before_airflow_3_3(behaviour: str) -> pytest.MarkDecorator:
    """Run a test of how the provider behaves without a 3.3 feature only where it is missing."""
    return pytest.mark.skipif(
        AIRFLOW_3_3_PLUS, reason=f"{behaviour} only applies before Airflow 3.3 (running {airflow.__version__})"
    )


legacy_connection_forms = pytest.mark.skipif(
    AIRFLOW_3_2_PLUS,
    reason=f"Airflow 3.2+ reads conn-fields and never calls the legacy form methods (running {airflow.__version__})",
)
declarative_connection_forms = pytest.mark.skipif(
    not AIRFLOW_3_2_PLUS,
    reason=f"conn-fields are read from provider info only on Airflow 3.2+ (running {airflow.__version__})",
)

DEFERS_TO_THE_TRIGGERER = AIRFLOW_VERSION.release[:3] >= (3, 2, 2)
"""Deferrable Kustomer bulk operators defer from 3.2.2 on (``triggers.kustomer_bulk.TRIGGERER_SAFE_SINCE``)."""
defers_to_the_triggerer = pytest.mark.skipif(
    not DEFERS_TO_THE_TRIGGERER,
    reason=f"before Airflow 3.2.2 a deferrable Kustomer bulk task waits in the worker (running {airflow.__version__})",
)
waits_in_the_worker_before_3_2_2 = pytest.mark.skipif(
    DEFERS_TO_THE_TRIGGERER,
    reason=f"deferrable Kustomer bulk tasks wait in the worker only before 3.2.2 (running {airflow.__version__})",
)

DAG_TEST_OUTPUT_IS_MASKED = AIRFLOW_VERSION.release[:2] >= (3, 1)
"""Whether ``dag.test()`` masks what it prints. Airflow 3.0's prints, unmasked, its own debug lines
(each secret it sends to the in-process supervisor, the rendered fields) and tracebacks with local
variables, whatever the provider does; there the tests check that the masker knows each secret."""
