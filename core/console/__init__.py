"""The web console's files (``index.html``, ``app.js``, ``app.css``), served at ``/`` by every
HTTP entry point (``agentfn.api._console``). No build step: plain HTML, CSS and JavaScript that
talk only to the public API with the user's key."""
