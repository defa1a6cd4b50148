"""The package's logger, which masks phone numbers in every line it writes."""

from __future__ import annotations

import logging

from . import phone


class MaskNumbers(logging.Filter):
    """Masks phone numbers in a record's message and traceback before any handler sees it.

    Our own messages mask numbers already; this also covers text we do not write, such as the
    message of an exception raised by an app's handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = phone.mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = phone.mask_text(logging.Formatter().formatException(record.exc_info))
        return True


#: The logger every module of the package writes to.
logger = logging.getLogger("flask_calltransfer")
logger.addFilter(MaskNumbers())
