"""Preparing a turn: the rules checked before anything is stored, and the model request."""

from __future__ import annotations

from datetime import datetime

from application.authentication import confirm_standing, confirmed_user
from application.budgets import Metering
from application.chat.turns import (
    HistoryBudget,
    PreparedTurn,
    SendMessageRequest,
    model_request,
    streaming_reply,
    with_sampling,
)
from application.chat_settings import SettingsDefaults, settings_of
from application.errors import ProviderUnavailable
from application.model_choice import unavailable_model
from application.ports import (
    AccessClaims,
    Clock,
    FetchedImage,
    ImageInspector,
    ModelCatalog,
    ModelInfo,
    TurnContext,
    UnitOfWork,
)
from domain.branches import Rewrite, RewriteKind
from domain.chat_settings import UserChatSettings
from domain.conversation import (
    Conversation,
    EarlierMessage,
    Message,
    MessageRole,
    NewMessage,
    title_from_message,
)
from domain.errors import InvalidInput, NotFound
from domain.history import fit_history
from domain.quota import QuotaPolicy


class TurnPreparation:
    """Checks a turn's rules and builds its model request before the model is called.

    The message is 1..max_message_chars characters; a closed conversation takes none; the
    model is the one named for this turn, else the conversation's, else the user's chat
    setting, and must be available now; an image is fetched now (a later turn never
    depends on its URL) and must be of a type the model takes. The user may use the model
    (403 ``model_not_allowed``) and the turn's estimate fits their budget (429
    ``budget_exceeded``): it is reserved and committed before the model is called. A new
    conversation is committed together with its first message (the active limit needs
    that). A caller still to be confirmed (``unconfirmed_caller``) is, in the turn's first
    transaction (before the image fetch if there is one): 401 and nothing stored when the
    user is gone, inactive or signed out.

    A turn on an earlier message (``rewrite``) is the same turn on a new branch: the
    conversation's current branch is switched to end at the message's parent, committed
    with the turn's first write (a refused turn switches nothing); a regenerated reply
    answers the stored question again, an edited message is a new sibling of the old
    one with the command's text."""

    def __init__(
        self,
        uow: UnitOfWork,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        clock: Clock,
        budget: HistoryBudget,
        defaults: SettingsDefaults,
        images: ImageInspector,
        metering: Metering,
    ) -> None:
        self._uow = uow
        self._metering = metering
        self._catalog = catalog
        self._policy = policy
        self._clock = clock
        self._budget = budget
        self._defaults = defaults
        self._images = images

    async def storing_the_message(self, command: SendMessageRequest) -> PreparedTurn:
        """Prepare the turn and commit the user's message in the same transaction."""
        return await self._prepare(command, store_message=True)

    async def starting_the_reply(
        self, command: SendMessageRequest, lease_until: datetime
    ) -> PreparedTurn:
        """Prepare a streamed turn and commit, in the same transaction, the user's message
        and the reply the server starts to write (``streaming``, leased until
        ``lease_until``): ``started_reply``. One transaction before the first token."""
        return await self._prepare(command, store_message=True, reply_lease=lease_until)

    async def _prepare(
        self,
        command: SendMessageRequest,
        *,
        store_message: bool,
        reply_lease: datetime | None = None,
    ) -> PreparedTurn:
        rewrite = command.rewrite
        regenerating = rewrite is not None and rewrite.kind is RewriteKind.REGENERATE
        if not regenerating:
            self._policy.check_message(command.text)
        if errors := unavailable_model(self._catalog, "model", command.model):
            raise InvalidInput(errors)
        caller = command.unconfirmed_caller
        if caller is not None and command.image_url:  # nothing is fetched for a stranger
            async with self._uow as uow:
                await confirmed_user(uow, caller)
            caller = None
        image = await self._images.fetch(command.image_url) if command.image_url else None
        async with self._uow as uow:
            context = await self._conversation(uow, command, caller)
            conversation = context.conversation
            settings = context.settings or await settings_of(
                uow, command.owner_id, self._catalog, self._defaults
            )
            limits = self._metering.limits_from(context.limits)
            model = self._model(command, conversation, settings, image)
            limits.access.require(model.id)
            # One more than the model sees: the newest is the new message's parent, or the
            # question a regenerated reply answers (the branch now ends there).
            seen = self._budget.max_messages - 1
            earlier: list[Message] | list[EarlierMessage]
            question = None
            if regenerating:  # the question is answered again: it is read whole
                earlier = await uow.messages.latest(conversation.id, seen + 1)
                question = earlier.pop()
            else:
                earlier = await uow.messages.history(conversation.id, seen + 1)
            if question is not None and question.role is not MessageRole.USER:
                raise InvalidInput({"message_id": ["This reply answers no message of yours."]})
            user_message = question or self._user_message(command, conversation.id, image)
            if question is None:
                user_message.parent_id = earlier[-1].id if earlier else None
            history = fit_history(
                [*(earlier[-seen:] if seen else []), user_message], self._budget.max_chars
            )
            request = with_sampling(
                model_request(model, settings.settings, history, self._budget.system_prompt),
                command.sampling,
                permitted_models=limits.access.allowed,
            )
            reservation = await self._metering.reserve(
                uow, command.owner_id, limits.budget, request
            )
            stored = question
            if question is None and (store_message or command.conversation_id is None):
                stored = await uow.messages.add(user_message)
            started = None
            if reply_lease is not None and stored is not None:
                started = await uow.messages.add_streaming(
                    streaming_reply(stored, request.model, self._clock.now()), reply_lease
                )
            if stored or reservation or rewrite:
                try:
                    await uow.commit()  # updated_at moves with the reply: one write per turn
                except BaseException:
                    self._metering.settled(reservation)
                    raise
        return PreparedTurn(
            conversation=conversation,
            user_message=user_message,
            request=request,
            stored_user_message=stored,
            reservation=reservation,
            started_reply=started,
        )

    async def _conversation(
        self, uow: UnitOfWork, command: SendMessageRequest, caller: AccessClaims | None
    ) -> TurnContext:
        """The turn's conversation and what it needs of its owner; the caller confirmed
        first when still unconfirmed (401 before 404)."""
        if caller is not None and (command.rewrite or command.conversation_id is None):
            await confirmed_user(uow, caller)
        if command.rewrite is not None:
            return await self._rewound(uow, command.owner_id, command.rewrite)
        if command.conversation_id is None:
            active = await uow.conversations.count_active_locked(command.owner_id)
            started = Conversation.start(
                owner_id=command.owner_id,
                now=self._clock.now(),
                active_conversations=active,
                policy=self._policy,
                title=title_from_message(command.text),
                model=command.model,
            )
            return TurnContext(
                conversation=await uow.conversations.add(started),
                settings=None,
                limits=await uow.spending.limits_of(command.owner_id),
            )
        login = None if caller is None else caller.family_id
        found = await uow.conversations.for_turn(
            command.conversation_id, command.owner_id, login_id=login
        )
        if caller is not None:
            if found is None or found.owner is None:
                await confirmed_user(uow, caller)
            else:  # read with the conversation: no query of its own
                confirm_standing(found.owner, caller)
        if found is None:
            raise NotFound("Conversation not found.")
        found.conversation.ensure_accepts_messages()
        return found

    async def _rewound(self, uow: UnitOfWork, owner_id: int, rewrite: Rewrite) -> TurnContext:
        """The conversation of the message rewritten, its current branch switched to end
        where the new branch leaves it."""
        target = await uow.messages.owned(rewrite.message_id, owner_id)
        if target is None:
            raise NotFound("Message not found.")
        branch_point = rewrite.branch_point(target)
        found = await uow.conversations.for_turn(target.conversation_id, owner_id)
        if found is None:
            raise NotFound("Message not found.")
        found.conversation.ensure_accepts_messages()
        await uow.messages.switch_branch(target.conversation_id, branch_point)
        return found

    def _model(
        self,
        command: SendMessageRequest,
        conversation: Conversation,
        settings: UserChatSettings,
        image: FetchedImage | None,
    ) -> ModelInfo:
        model_id = command.model or conversation.model or settings.settings.ai_model
        model = self._catalog.get(model_id)
        if model is None:
            raise ProviderUnavailable(
                f'The model "{model_id}" is not available now; choose another in your '
                "chat settings."
            )
        if image is not None and not model.takes_image(image.mime_type):
            raise InvalidInput({"image_url": [_refused_image(model, image.mime_type)]})
        return model

    def _user_message(
        self, command: SendMessageRequest, conversation_id: int, image: FetchedImage | None
    ) -> NewMessage:
        return NewMessage(
            conversation_id=conversation_id,
            role=MessageRole.USER,
            content=command.text,
            created_at=self._clock.now(),
            image_url=command.image_url,
            # A data: URI the user sent is its own data; a URL's image is kept as fetched.
            image_data=None
            if image is None or image.data_uri == command.image_url
            else (image.data_uri),
        )


def _refused_image(model: ModelInfo, mime_type: str) -> str:
    if not model.supports_images:
        return f'The model "{model.id}" does not take images.'
    takes = ", ".join(sorted(kind.removeprefix("image/").upper() for kind in model.image_types))
    return (
        f'The model "{model.id}" does not take {mime_type.removeprefix("image/").upper()} '
        f"images; send one of: {takes}."
    )
