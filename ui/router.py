"""Make every page run through app.py's router, even on a server's very first deep link.

With a folder named ``pages/`` beside the main script, Streamlit starts in its legacy
multipage mode: until ``st.navigation`` has run once in the process, a deep link such as
``/draw`` executes ``pages/draw.py`` directly — without app.py's page config and sidebar.
"""

import streamlit as st

ROUTED = "_routed_by_app"


def mark_routed() -> None:
    """Called by app.py before it runs the selected page."""
    st.session_state[ROUTED] = True


def ensure_routed() -> None:
    """First line of every page: if app.py did not run (legacy mode), rerun through it."""
    if st.session_state.get(ROUTED):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # what st.navigation itself sets once it runs
    st.rerun()
