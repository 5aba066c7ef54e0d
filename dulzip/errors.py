"""Exceptions a user can cause. The CLI turns each into one line on stderr and exit code 1."""


class DulzipError(Exception):
    """Base class of every error dulzip reports to a user."""


class FormatError(DulzipError):
    """A .dlz file (or an input claimed to be of some format) is malformed."""


class CorruptDataError(DulzipError):
    """Data failed a checksum: the file is damaged."""


class ModelMismatchError(DulzipError):
    """The file needs model weights other than the ones available."""


class UsageError(DulzipError):
    """A request that cannot be carried out as asked (exit 1, like any other failure)."""


class DulzipWarning(UserWarning):
    """Something a user should know that does not stop the work: a model that is not installed
    (the input went to zstd instead), an asked-for model that did worse than zstd. The CLI
    prints each as one line (unless -q); a library user filters them with :mod:`warnings`."""
