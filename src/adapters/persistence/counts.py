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

# The same for a table without indexes yet (a bulk load): one grouped pass instead of a
# count per row. PostgreSQL's UPDATE ... FROM.
POSTGRESQL_BULK_RECOUNT = (
    "UPDATE conversations SET message_count = counted.n FROM "
    "(SELECT conversation_id, count(*) AS n FROM messages GROUP BY conversation_id) AS counted "
    "WHERE conversations.id = counted.conversation_id",
    "UPDATE users SET conversation_count = counted.n FROM "
    "(SELECT owner_id, count(*) AS n FROM conversations GROUP BY owner_id) AS counted "
    "WHERE users.id = counted.owner_id",
)

POSTGRESQL_TRIGGERS = {
    "messages": "parley_count_messages",
    "conversations": "parley_count_conversations",
}
