"""Seeds a database for the admin benchmark (``bench.admin``), deterministically.

``messages``/100 users and ``messages``/10 conversations: half English, half Chinese
without spaces, Zipf-distributed words, token usage on every reply; two rare words planted
in exactly 5 messages at any size. The schema comes from Parley's own migrations. Loading
is bulk (SQLite: executemany in one transaction; PostgreSQL: COPY); secondary indexes, the
search triggers and the search index are dropped for the load and rebuilt from their
stored definitions at the end, and the stored counts recomputed once.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from adapters.persistence.counts import POSTGRESQL_BULK_RECOUNT, POSTGRESQL_TRIGGERS, RECOUNT
from adapters.persistence.database import create_engine
from adapters.persistence.migrate import upgrade
from adapters.persistence.search import SQLITE_REBUILD
from bench.harness import log

ADMIN_USERNAME = "bench_admin"
ADMIN_TOKEN = "bench0admin0token0000000000000000000000"
MEMBER_TOKEN = "bench0member0token000000000000000000000"
MEMBER_ID = 2  # a regular user; their own conversation list is measured
PASSWORD = "bench-password"

RARE_EN = "zymurgy"
RARE_ZH = "饕餮盛宴"
RARE_OCCURRENCES = 5  # messages containing each rare word, at any size
COMMON_EN = "model"  # in about 7% of messages
COMMON_ZH = "机器学习"  # in about 6%
SHORT_ZH = "模型"  # common too, but 2 characters: no trigram to look up
MODELS = ["gpt-4o-mini", "qwen-plus", "moonshot-v1-8k", "gemini-1.5-flash", "deepseek-chat"]
START = datetime(2025, 1, 1, tzinfo=UTC)


def _words(text: str) -> list[str]:
    return text.split()


ENGLISH = _words(
    """
the to and of a in is it you that for this with on can be are what how do model data
learning python function error code training network machine system time use question
answer value example file test server request token user list string number result
problem work make need help like know want please thanks explain write create update
delete change input output memory performance database query index search language text
image neural deep layer weight loss gradient optimizer batch epoch accuracy feature
label dataset split validation overfitting regularization dropout attention transformer
embedding vector matrix tensor shape dimension parameter hyperparameter learning rate
schedule warmup checkpoint inference latency throughput deploy container docker
kubernetes cloud api endpoint client response status json schema field type class object
method variable loop condition exception debug log trace stack memory leak thread
process async await future promise callback event queue message broker cache redis sql
join table column row primary key foreign constraint transaction commit rollback lock
deadlock isolation level replica backup restore migration version release branch merge
conflict review commit history rebase tag pipeline build artifact package dependency
install upgrade configure setting option flag argument command shell terminal script
automation schedule cron job worker pool timeout retry backoff rate limit quota usage
cost budget price plan feature request bug report issue ticket priority deadline sprint
team meeting project roadmap goal metric dashboard alert monitor incident outage
recovery security password encryption hash certificate https firewall access permission
role admin account profile email phone address payment invoice refund order shipping
delivery stock customer support ticket chat bot assistant prompt context window summary
translation grammar essay story poem recipe travel weather music movie book history
science math physics chemistry biology health exercise diet sleep coffee weekend holiday
family friend
"""
)

CHINESE = _words(
    """
我们 你们 他们 这个 那个 问题 可以 一个 没有 什么 怎么 为什么 因为 所以
模型 数据 学习 机器学习 人工智能 神经网络 深度学习 训练 推理 参数 优化 算法
代码 函数 错误 服务器 请求 响应 接口 数据库 查询 索引 搜索 文本 图像 语言
翻译 总结 用户 管理员 对话 消息 时间 今天 明天 昨天 现在 已经 还是 但是
如果 或者 需要 希望 帮助 谢谢 请问 解释 一下 例子 方法 步骤 结果 效果 性能
速度 内存 缓存 部署 容器 版本 更新 安装 配置 设置 选项 命令 脚本 自动化
任务 队列 线程 进程 异步 超时 重试 限制 配额 费用 价格 订单 支付 退款 发货
客户 支持 反馈 报告 项目 计划 目标 指标 监控 告警 故障 恢复 安全 密码 加密
证书 权限 角色 账号 邮箱 手机 地址 天气 音乐 电影 书籍 历史 科学 数学 物理
化学 生物 健康 运动 饮食 睡眠 咖啡 周末 假期 家人 朋友 工作 公司 同事 会议
报告 文档 表格 演示 邮件 日程 提醒 旅行 酒店 机票 火车 北京 上海 广州 深圳
杭州 成都 中国 世界 经济 市场 投资 股票 基金 银行 保险 教育 学校 老师 学生
考试 作业 课程 大学 研究 论文 实验 数据集 标签 特征 向量 矩阵 张量
"""
)


def _weights(words: list[str]) -> list[float]:
    return [1 / (rank + 1) for rank in range(len(words))]


@dataclass(frozen=True)
class Size:
    users: int
    conversations: int
    messages: int


class Generator:
    """Rows in insertion order; the same seed gives the same rows on every database."""

    def __init__(self, size: Size, seed: int, password_hash: str) -> None:
        self.size = size
        self.random = random.Random(seed)
        self.password_hash = password_hash
        self._en_weights = _weights(ENGLISH)
        self._zh_weights = _weights(CHINESE)
        picks = self.random.sample(range(size.messages), 2 * RARE_OCCURRENCES)
        self.rare_en = set(picks[:RARE_OCCURRENCES])
        self.rare_zh = set(picks[RARE_OCCURRENCES:])

    def users(self) -> Iterator[tuple[Any, ...]]:
        for user_id in range(1, self.size.users + 1):
            name = ADMIN_USERNAME if user_id == 1 else f"user{user_id:06d}"
            joined = START - timedelta(days=365) + timedelta(minutes=user_id * 7)
            yield (
                user_id,
                name,
                f"{name}@example.com",
                self.password_hash,
                user_id == 1,
                True,
                joined,
            )

    def text(self, english: bool, words: int) -> str:
        if english:
            chosen = self.random.choices(ENGLISH, self._en_weights, k=words)
            return " ".join(chosen).capitalize() + "."
        chosen = self.random.choices(CHINESE, self._zh_weights, k=words)
        middle = len(chosen) // 2
        return "".join(chosen[:middle]) + "，" + "".join(chosen[middle:]) + "。"  # noqa: RUF001

    def conversations_and_messages(
        self,
    ) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
        size, rnd = self.size, self.random
        counts = [rnd.randint(2, 18) for _ in range(size.conversations)]
        difference = size.messages - sum(counts)
        while difference:
            i = rnd.randrange(size.conversations)
            step = 1 if difference > 0 else -1
            if counts[i] + step >= 1:
                counts[i] += step
                difference -= step
        active: dict[int, int] = {}
        spacing = timedelta(days=365) / size.conversations
        message_id = 0
        for index, count in enumerate(counts):
            conversation_id = index + 1
            owner = rnd.randint(2, size.users) if size.users > 1 else 1
            created = START + spacing * index
            english = rnd.random() < 0.5
            status = "closed"
            if rnd.random() < 0.1 and active.get(owner, 0) < 10:
                status = "active"
                active[owner] = active.get(owner, 0) + 1
            rows = []
            row: tuple[Any, ...]
            for n in range(count):
                message_id += 1
                when = created + timedelta(seconds=30 * n + rnd.randint(0, 20))
                if n % 2 == 0:
                    content = self.text(english, rnd.randint(5, 25))
                    row = (message_id, conversation_id, "user", content, "completed")
                    row += (None, None, 0, 0, None, None, None, when)
                elif rnd.random() < 0.01:
                    row = (message_id, conversation_id, "assistant", "", "failed", MODELS[0])
                    row += (None, 0, 0, None, 1000, "provider_timeout", when)
                else:
                    content = self.text(english, rnd.randint(10, 40))
                    model = rnd.choice(MODELS)
                    row = (message_id, conversation_id, "assistant", content, "completed", model)
                    row += ("bench", rnd.randint(20, 2000), rnd.randint(10, 800), "stop")
                    row += (rnd.randint(200, 5000), None, when)
                if message_id - 1 in self.rare_en:
                    row = (*row[:3], f"{row[3]} Have you heard of {RARE_EN}?", *row[4:])
                if message_id - 1 in self.rare_zh:
                    planted = f"{row[3]}你听说过{RARE_ZH}吗？"  # noqa: RUF001
                    row = (*row[:3], planted, *row[4:])
                rows.append(row)
            title = ""
            if rnd.random() < 0.3:
                title = " ".join(rows[0][3].split()[:5])[:60]
            last = rows[-1][-1]
            yield (conversation_id, owner, title, None, status, created, last), rows


USER_COLUMNS = ("id", "username", "email", "password_hash", "is_staff", "is_active", "date_joined")
CONVERSATION_COLUMNS = ("id", "owner_id", "title", "model", "status", "created_at", "updated_at")
MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "role",
    "content",
    "status",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "latency_ms",
    "error_code",
    "created_at",
)


def _api_tokens() -> list[tuple[int, str, datetime]]:
    return [
        (1, hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(), START),
        (MEMBER_ID, hashlib.sha256(MEMBER_TOKEN.encode()).hexdigest(), START),
    ]


def _batches(
    generator: Generator, batch: int = 20_000
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    conversations: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    for conversation, rows in generator.conversations_and_messages():
        conversations.append(conversation)
        messages.extend(rows)
        if len(messages) >= batch:
            yield conversations, messages
            conversations, messages = [], []
    if conversations:
        yield conversations, messages


def _progress(done: int, total: int, started: float) -> None:
    sys.stdout.write(f"\r  messages {done:,}/{total:,}  {time.monotonic() - started:6.1f}s")
    sys.stdout.flush()


# ---- SQLite -------------------------------------------------------------------------------


def _sqlite_time(value: datetime) -> str:
    # What Parley's UtcDateTime stores on SQLite: naive UTC in SQLAlchemy's text format.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in row)


def seed_sqlite(path: Path, generator: Generator) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-2000000")
    db.execute("PRAGMA temp_store=MEMORY")
    saved = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND ("
        "type = 'trigger' OR (type = 'index' AND tbl_name IN ('messages', 'conversations')))"
    ).fetchall()
    db.execute("BEGIN")
    for kind, name, _ in saved:
        db.execute(f'DROP {kind.upper()} "{name}"')

    def insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in columns)
        db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [_sqlite_row(r) for r in rows],
        )

    started = time.monotonic()
    insert("users", USER_COLUMNS, list(generator.users()))
    insert("api_tokens", ("user_id", "token_digest", "created_at"), _api_tokens())
    done = 0
    for conversations, messages in _batches(generator):
        insert("conversations", CONVERSATION_COLUMNS, conversations)
        insert("messages", MESSAGE_COLUMNS, messages)
        done += len(messages)
        _progress(done, generator.size.messages, started)
    sys.stdout.write("\n")
    log("  rebuilding indexes and the search index ...")
    for kind, _, sql in saved:
        if kind == "index":
            db.execute(sql)
    for statement in (*SQLITE_REBUILD, *RECOUNT):
        db.execute(statement)
    for kind, _, sql in saved:
        if kind == "trigger":
            db.execute(sql)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    log(f"  loaded in {time.monotonic() - started:.1f}s")


# ---- PostgreSQL ---------------------------------------------------------------------------


async def seed_postgres(dsn: str, generator: Generator) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        await db.execute("SET maintenance_work_mem = '1GB'")
        saved = await db.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename IN ('messages', 'conversations') "
            "AND indexname NOT LIKE 'pk\\_%' AND indexname NOT LIKE 'uq\\_%'"
        )
        for index in saved:
            await db.execute(f'DROP INDEX "{index["indexname"]}"')
        # The stored counts are recomputed once after the load, not once per row.
        for table, trigger in POSTGRESQL_TRIGGERS.items():
            await db.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        started = time.monotonic()
        await db.copy_records_to_table(
            "users", records=list(generator.users()), columns=list(USER_COLUMNS)
        )
        await db.copy_records_to_table(
            "api_tokens", records=_api_tokens(), columns=["user_id", "token_digest", "created_at"]
        )
        done = 0
        for conversations, messages in _batches(generator, 100_000):
            await db.copy_records_to_table(
                "conversations", records=conversations, columns=list(CONVERSATION_COLUMNS)
            )
            await db.copy_records_to_table(
                "messages", records=messages, columns=list(MESSAGE_COLUMNS)
            )
            done += len(messages)
            _progress(done, generator.size.messages, started)
        sys.stdout.write("\n")
        log("  the stored counts, then the indexes (pg_trgm GIN included) ...")
        # Counted before the secondary indexes exist, and the two tables rewritten
        # compactly afterwards: the UPDATE leaves a dead version of every row behind.
        for statement in POSTGRESQL_BULK_RECOUNT:
            await db.execute(statement)
        await db.execute("VACUUM FULL conversations")
        await db.execute("VACUUM FULL users")
        for index in saved:
            await db.execute(index["indexdef"])
        for table, trigger in POSTGRESQL_TRIGGERS.items():
            await db.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        for table in ("users", "conversations", "messages", "api_tokens"):
            await db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        await db.execute("VACUUM ANALYZE")
        log(f"  loaded in {time.monotonic() - started:.1f}s")
    finally:
        await db.close()


async def _recreate_postgres_database(url: str) -> None:
    import asyncpg

    parsed = make_url(url)
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    db = await asyncpg.connect(admin_dsn)
    try:
        await db.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await db.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await db.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def seed(url: str, messages: int, seed: int = 20250112) -> None:
    """Creates (or replaces) the database at ``url`` and loads it."""
    from argon2 import PasswordHasher

    size = Size(
        users=max(2, messages // 100), conversations=max(1, messages // 10), messages=messages
    )
    generator = Generator(size, seed, PasswordHasher().hash(PASSWORD))
    parsed = make_url(url)
    log(f"seeding {url}: {size.users:,} users, {size.conversations:,} conversations")
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        asyncio.run(_migrate(url))
        seed_sqlite(path, generator)
    else:
        asyncio.run(_recreate_postgres_database(url))
        asyncio.run(_migrate(url))
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        asyncio.run(seed_postgres(dsn, generator))
