// What the chat page's modules share: the open conversation, the reply being written,
// the models and the user's chat settings as the API last gave them.

export const state = {
  // The open conversation in the /api/v1 shape, or null while a new one is being started.
  conversation: null,
  cancelUrl: null,
  models: [],
  settings: null,
};

// The model a turn will use: the conversation's own, else the user's chat setting.
export function modelInEffect() {
  const id = (state.conversation && state.conversation.model) || (state.settings && state.settings.ai_model);
  return state.models.find((model) => model.id === id) || null;
}
