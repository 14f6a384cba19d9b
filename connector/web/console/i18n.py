"""The console's labels in English and German (``defaults.language``, switchable per session)."""

from __future__ import annotations

from flask import session

__all__ = ["LABELS", "LANGUAGES", "current_language", "label"]

LANGUAGES = ("en", "de")

LABELS: dict[str, dict[str, str]] = {
    "console": {"en": "Sales-ops console", "de": "Sales-Ops-Konsole"},
    "overview": {"en": "Overview", "de": "Übersicht"},
    "calls": {"en": "Calls", "de": "Anrufe"},
    "review": {"en": "Review queue", "de": "Prüfliste"},
    "configuration": {"en": "Configuration", "de": "Konfiguration"},
    "log_in": {"en": "Log in", "de": "Anmelden"},
    "log_out": {"en": "Log out", "de": "Abmelden"},
    "user_name": {"en": "User name", "de": "Benutzername"},
    "password": {"en": "Password", "de": "Passwort"},
    "login_failed": {
        "en": "Wrong user name or password.",
        "de": "Benutzername oder Passwort falsch.",
    },
    "login_limited": {
        "en": "Too many failed logins. Try again in a few minutes.",
        "de": "Zu viele fehlgeschlagene Anmeldungen. Bitte in einigen Minuten erneut versuchen.",
    },
    "role_viewer": {"en": "viewer", "de": "Betrachter"},
    "role_operator": {"en": "operator", "de": "Operator"},
    "target": {"en": "Target", "de": "Ziel"},
    "today": {"en": "Today", "de": "Heute"},
    "last_7_days": {"en": "Last 7 days", "de": "Letzte 7 Tage"},
    "calls_per_day": {"en": "Calls per day", "de": "Anrufe pro Tag"},
    "parked_targets": {"en": "Parked targets", "de": "Pausierte Ziele"},
    "dead_deliveries": {"en": "Dead deliveries", "de": "Aufgegebene Zustellungen"},
    "oldest_waiting": {"en": "Oldest waiting delivery", "de": "Älteste wartende Zustellung"},
    "review_length": {"en": "Calls in the review queue", "de": "Anrufe in der Prüfliste"},
    "none": {"en": "none", "de": "keine"},
    "until": {"en": "until", "de": "bis"},
    "since": {"en": "since", "de": "seit"},
    "dead_count": {"en": "dead", "de": "aufgegeben"},
    "latest_reason": {"en": "latest reason", "de": "letzter Grund"},
    "ago": {"en": "ago", "de": "her"},
    "search": {"en": "Search", "de": "Suchen"},
    "search_hint": {
        "en": "Phone number (any format) or call id",
        "de": "Telefonnummer (beliebiges Format) oder Anruf-ID",
    },
    "filter": {"en": "Filter", "de": "Filtern"},
    "state": {"en": "State", "de": "Status"},
    "direction": {"en": "Direction", "de": "Richtung"},
    "channel": {"en": "Channel", "de": "Kanal"},
    "user": {"en": "User", "de": "Benutzer"},
    "from_date": {"en": "From", "de": "Von"},
    "to_date": {"en": "To", "de": "Bis"},
    "any": {"en": "any", "de": "alle"},
    "received": {"en": "Received", "de": "Eingegangen"},
    "remote": {"en": "Customer number", "de": "Kundennummer"},
    "duration": {"en": "Duration", "de": "Dauer"},
    "targets": {"en": "Targets", "de": "Ziele"},
    "older": {"en": "Older calls", "de": "Ältere Anrufe"},
    "newest": {"en": "Newest calls", "de": "Neueste Anrufe"},
    "no_calls": {"en": "No calls found.", "de": "Keine Anrufe gefunden."},
    "call": {"en": "Call", "de": "Anruf"},
    "call_id": {"en": "Call id", "de": "Anruf-ID"},
    "started": {"en": "Started", "de": "Beginn"},
    "from": {"en": "From", "de": "Von"},
    "to": {"en": "To", "de": "An"},
    "users": {"en": "Users", "de": "Benutzer"},
    "show_number": {"en": "Show number", "de": "Nummer zeigen"},
    "headline": {"en": "Headline", "de": "Überschrift"},
    "summary": {"en": "Summary", "de": "Zusammenfassung"},
    "key_points": {"en": "Key points", "de": "Kernpunkte"},
    "action_items": {"en": "Action items", "de": "Aufgaben"},
    "transcript": {"en": "Transcript", "de": "Transkript"},
    "transcript_hidden": {
        "en": "The transcript is shown to operators only.",
        "de": "Das Transkript sehen nur Operatoren.",
    },
    "deliveries": {"en": "Deliveries", "de": "Zustellungen"},
    "reason": {"en": "Reason", "de": "Grund"},
    "attempts": {"en": "Attempts", "de": "Versuche"},
    "next_attempt": {"en": "Next attempt", "de": "Nächster Versuch"},
    "records": {"en": "Records in the CRM", "de": "Datensätze im CRM"},
    "match": {"en": "Match", "de": "Zuordnung"},
    "assigned_by": {"en": "assigned by", "de": "zugeordnet von"},
    "retry_now": {"en": "Retry now", "de": "Jetzt erneut versuchen"},
    "replay": {"en": "Replay", "de": "Erneut zustellen"},
    "skip": {"en": "Skip", "de": "Überspringen"},
    "history": {"en": "Console actions", "de": "Aktionen in der Konsole"},
    "when": {"en": "When", "de": "Wann"},
    "who": {"en": "Who", "de": "Wer"},
    "what": {"en": "What", "de": "Was"},
    "outcome": {"en": "Outcome", "de": "Ergebnis"},
    "done_action": {"en": "Done.", "de": "Erledigt."},
    "candidates": {"en": "Candidates", "de": "Kandidaten"},
    "name": {"en": "Name", "de": "Name"},
    "owner": {"en": "Owner", "de": "Besitzer"},
    "last_modified": {"en": "Last modified", "de": "Zuletzt geändert"},
    "matched_number": {"en": "Matched number", "de": "Passende Nummer"},
    "log_on_record": {"en": "Log on this record", "de": "Auf diesem Datensatz protokollieren"},
    "remember_number": {
        "en": "Remember this number for this record",
        "de": "Diese Nummer für diesen Datensatz merken",
    },
    "search_crm": {"en": "Search the CRM", "de": "Im CRM suchen"},
    "search_crm_hint": {"en": "Phone number or name", "de": "Telefonnummer oder Name"},
    "search_crm_number_only": {
        "en": "Phone number (this target cannot search by name)",
        "de": "Telefonnummer (dieses Ziel kann nicht nach Namen suchen)",
    },
    "search_number_only": {
        "en": "This target searches by phone number only.",
        "de": "Dieses Ziel sucht nur nach Telefonnummern.",
    },
    "searching": {
        "en": "The worker is searching; this page refreshes.",
        "de": "Der Worker sucht; die Seite aktualisiert sich.",
    },
    "deadline": {"en": "Deadline", "de": "Frist"},
    "review_empty": {"en": "Nothing to review.", "de": "Nichts zu prüfen."},
    "no_candidates": {"en": "No candidates.", "de": "Keine Kandidaten."},
    "type": {"en": "Type", "de": "Typ"},
    "filters": {"en": "Filters", "de": "Filter"},
    "mapping": {"en": "Mapping", "de": "Zuordnungsdatei"},
    "matching": {"en": "Matching", "de": "Abgleich"},
    "last_check": {"en": "Last check", "de": "Letzte Prüfung"},
    "run_check": {"en": "Run the check again", "de": "Prüfung erneut ausführen"},
    "not_checked": {"en": "not checked yet", "de": "noch nicht geprüft"},
    "check_running": {
        "en": "The worker runs the check; this page refreshes.",
        "de": "Der Worker prüft; die Seite aktualisiert sich.",
    },
    "options": {"en": "Options", "de": "Optionen"},
    "forbidden": {
        "en": "Your role may not do this.",
        "de": "Ihre Rolle darf das nicht.",
    },
    "not_found": {"en": "Not found.", "de": "Nicht gefunden."},
}


def current_language(default: str) -> str:
    """The session's chosen language, else `default`."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else default


def label(key: str, language: str) -> str:
    """The label `key` in `language` (English when the key has no translation)."""
    entry = LABELS[key]
    return entry.get(language) or entry["en"]
