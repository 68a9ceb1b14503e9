// An image to send with the next message, for models that take images: picked with a
// file chooser, previewed from a blob: URL, sent as a data: URI (what /api/v1/messages/chat/
// takes in `image_url`).

import { clear, h } from "./dom.js";
import { t } from "./i18n.js";
import { modelInEffect } from "./chat-state.js";

const attached = { dataUrl: null, previewUrl: null };

export function attachControls() {
  const input = h("input", {
    id: "image-input",
    type: "file",
    accept: "image/*",
    hidden: true,
    "aria-label": t("attach_image"),
    onchange: (event) =>
      pick(event).catch((error) => {
        document.getElementById("composer-status").textContent = String(error);
      }),
  });
  const button = h("button", { type: "button", id: "attach", onclick: () => input.click() }, t("attach_image"));
  return h("div", { class: "attach" }, button, input);
}

export function attachmentPreview() {
  return h("div", { id: "attachment-preview", class: "attachment-preview", hidden: true });
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function pick(event) {
  const input = event.currentTarget;
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  clearAttachment();
  attached.dataUrl = await readAsDataUrl(file);
  attached.previewUrl = URL.createObjectURL(file);
  const preview = document.getElementById("attachment-preview");
  clear(preview).append(
    h("img", { src: attached.previewUrl, alt: t("attached_image") }),
    h("span", {}, file.name),
    h("button", { type: "button", onclick: removeAttachment }, t("remove_image")),
  );
  preview.hidden = false;
}

function removeAttachment() {
  clearAttachment();
  document.getElementById("attach").focus();
}

export function clearAttachment() {
  if (attached.previewUrl) URL.revokeObjectURL(attached.previewUrl);
  attached.dataUrl = null;
  attached.previewUrl = null;
  const preview = document.getElementById("attachment-preview");
  clear(preview).hidden = true;
}

// The image for the next message, or null.
export function attachedImage() {
  return attached.dataUrl;
}

// Only a model that takes images offers the button; switching to one that does not
// drops the image picked for the other, saying why.
export function updateAttachAvailability() {
  const model = modelInEffect();
  const takesImages = Boolean(model && model.supports_images);
  document.getElementById("attach").hidden = !takesImages;
  if (!takesImages && attached.dataUrl) {
    clearAttachment();
    document.getElementById("composer-status").textContent = t("no_images");
  }
}
