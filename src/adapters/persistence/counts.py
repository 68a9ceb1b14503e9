"""The stored counts (``conversations.message_count``, ``users.conversation_count``).

Triggers keep them exact on every insert and delete (migration 0005); these statements
recompute them from the rows, for the migration that adds them and for bulk loads that
run with triggers off (``bench/admin_seed.py``)."""

RECOUNT = (
    "UPDATE conversations SET message_count = "
    "(SELECT count(*) FROM messages WHERE messages.conversation_id = conversations.id)",
    "UPDATE users SET conversation_count = "
    "(SELECT count(*) FROM conversations WHERE conversations.owner_id = users.id)",
)

POSTGRESQL_TRIGGERS = {
    "messages": "parley_count_messages",
    "conversations": "parley_count_conversations",
}
