"""Flask-CallTransfer: answer voice-AI platforms' call-transfer webhooks with decorated handlers."""

from __future__ import annotations

from . import phone as phone
from . import signals as signals
from .callbacks import Callback
from .deadlines import HandlerTimeout
from .exceptions import BodyTimeout
from .exceptions import CallTransferError
from .exceptions import ConfigurationError
from .exceptions import DeliveryFailed
from .exceptions import InvalidDestination
from .exceptions import InvalidPayload
from .exceptions import PayloadTooLarge
from .exceptions import RequestVerificationFailed
from .exceptions import StoreUnavailable
from .exceptions import TransferRefused
from .exceptions import UnsupportedDestination
from .exceptions import refuse
from .extension import CallTransfer
from .handoff import Handoff
from .models import CALLER
from .models import AssistantDestination
from .models import Attempt
from .models import Conversation
from .models import Destination
from .models import DestinationChain
from .models import FallbackPlan
from .models import NumberDestination
from .models import PlatformEvent
from .models import SipDestination
from .models import SummaryPlan
from .models import TransferPlan
from .models import TransferRequest
from .platforms import BUILTIN_PLATFORMS
from .platforms import Platform
from .platforms import SipgatePlatform
from .platforms import VapiPlatform
from .platforms import VoiceDockPlatform
from .routing import BusinessHours
from .routing import DestinationPool

__version__ = "0.1.0"

__all__ = [
    "CALLER",
    "Attempt",
    "DestinationChain",
    "BUILTIN_PLATFORMS",
    "AssistantDestination",
    "BodyTimeout",
    "BusinessHours",
    "DestinationPool",
    "Callback",
    "CallTransfer",
    "CallTransferError",
    "ConfigurationError",
    "DeliveryFailed",
    "Conversation",
    "Destination",
    "FallbackPlan",
    "Handoff",
    "HandlerTimeout",
    "InvalidDestination",
    "InvalidPayload",
    "NumberDestination",
    "PayloadTooLarge",
    "Platform",
    "PlatformEvent",
    "RequestVerificationFailed",
    "SipDestination",
    "SipgatePlatform",
    "StoreUnavailable",
    "SummaryPlan",
    "TransferPlan",
    "TransferRefused",
    "TransferRequest",
    "UnsupportedDestination",
    "VapiPlatform",
    "VoiceDockPlatform",
    "refuse",
]
