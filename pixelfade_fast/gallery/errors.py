"""The gallery command's user errors."""
from ..errors import UserError


class GalleryError(UserError):
    """A gallery run cannot start or continue as asked; nothing has been written when it is raised at start-up."""
