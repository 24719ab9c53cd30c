"""Former name of :mod:`soma_agent.run_control`; kept so existing imports keep working."""

from soma_agent.run_control import *  # noqa: F403
from soma_agent.run_control import __all__  # noqa: F401
