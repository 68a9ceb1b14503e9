"""What both dialects say of branches (their OpenAPI descriptions), in one place."""

from __future__ import annotations

REGENERATE = """Ask the model again for a reply you already have: a new reply to the same
message, seeing the same history up to it, becomes part of the current branch; the old
reply stays on its own branch (see `tree/` and `select/`). Answers and streams like
sending a message (the same quotas, rate limits, budgets, `Idempotency-Key` and
`"stream": true`); `user_message` is the message answered again. A user message is not a
reply (400); a reply still being written is 409 `reply_in_progress`."""

EDIT = """Edit one of your messages and send it again: a new message beside the old one
(the same parent), and the model's reply to it, become the current branch; the old
message and everything after it stay on their branch. Answers and streams like sending a
message, with the same rules and limits; only a message you wrote can be edited (400)."""

SELECT = """Make the branch through this message current: the history from the first
message down to the newest message at or below this one (the last thing written on that
branch). The conversation's message lists and the model's next turn follow it. Answers
that branch's last message."""

TREE = """Every message of the conversation, of every branch, oldest first: each with
its parent (`parent_id`, null for a first message), the ids of its siblings (the messages
with the same parent, itself included, oldest first) and whether it is on the current
branch. Paged by id: pass the `next_after` of a page as `after` for the next one
(`null`: the last page). The message lists show the current branch only; stored counts
and admin statistics count every message of the tree."""
