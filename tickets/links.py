"""Each reply mailed to a customer carries "Yes, this solved my problem": a signed link naming
the reply (its message id), answered by ``tickets.views.resolution_confirm``."""

from csai.links import SignedLink

CONFIRM = SignedLink(view="resolution-confirm", salt="tickets.links.confirm-solved")
