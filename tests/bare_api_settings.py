"""The test settings without REST_FRAMEWORK and SPECTACULAR_SETTINGS, as the README's
quickstart has it, from the start of the process (drf-spectacular reads
DEFAULT_SCHEMA_CLASS when the API's views are imported)."""

from tests.settings import *  # noqa: F403

del REST_FRAMEWORK  # noqa: F821
del SPECTACULAR_SETTINGS  # noqa: F821
