"""The web app: pages for people (chat) and for staff (admin), served by the same process.

The pages are HTML shells rendered by Litestar's Jinja templates; what they show comes
from the JSON API through small ES modules in ``static/`` (no build step, no CDN), with
the browser session and its CSRF token. So the pages use exactly the use cases, rules and
errors of the API, and nothing else reaches the database."""
