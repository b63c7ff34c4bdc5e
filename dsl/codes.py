"""Every diagnostic code: a stable kebab-case id, a severity, a title and an explanation.

Codes never change once published: tools, editors and CI match on them. `diagnostic()` builds a
`Diagnostic` with the code's own severity, so a code is always an error or always a warning.
`markdown()` renders the table of codes that `docs/diagnostics.md` holds (a test keeps the two
equal). Each `example` is a ruleset that produces the code (tests check that too, where `checked`
is true).
"""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import Diagnostic, Severity
from .source import Span

__all__ = ["CODES", "Code", "diagnostic", "markdown"]

E = Severity.ERROR
W = Severity.WARNING


@dataclass(frozen=True, slots=True)
class Code:
    id: str
    severity: Severity
    title: str
    explanation: str
    example: str  # rules text that produces this code
    checked: bool = True  # whether parse + check of `example` alone produces it


_ALL: tuple[Code, ...] = (
    # ------------------------------------------------------------------ reading files
    Code(
        "syntax",
        E,
        "the text is not valid rule language",
        "The parser could not read this part of the file. The message says what it found and "
        "what it expected there; common slips (a missing `then`, `=` for `==`, single quotes, a "
        "misspelt keyword) get a note of their own. An unfinished condition (`where e.x ==` with "
        "nothing after it) is reported where it stops: a keyword such as `then` is never taken "
        "for the missing value. The rest of the file is still read, declaration by declaration, "
        "so every broken declaration is reported in one run. Within a rule's trigger, `if` line, "
        "steps and clauses and a test's lines, a broken statement (with its continuation lines) "
        "is set aside and the rest read on: later broken lines "
        "and the errors the checker finds in the rest are reported too (its warnings wait for "
        "the fix; after a broken trigger, the rule's other syntax errors only, as the rest cannot "
        "be checked without it). Reading stops at a line that is fine on its own (the fault is "
        "before it, say an unclosed `{`), and at faults outside those lines (a rule without "
        "`then`). "
        "A misspelt keyword with a suggestion as long as itself (`sned`, `scroe`) is read as meant, "
        "so the rest of its line is checked too. "
        "A name whose `let` or `segment` did not parse is not reported where it is used. A keyword "
        "run into the word after it (`sendemail`, `stopif`, `oncee`) is an error, never read as "
        "two words.",
        'rule welcome\n    when signed_up\n        send email "welcome_1"\nend\n',
    ),
    Code(
        "too-deep",
        E,
        "an expression is too long or nests too deeply",
        "A declaration nests expressions (brackets, `not`, operators) so deeply that it cannot "
        "be read; a chain of hundreds of `or`s or `+`s is as deep (each holds the ones before "
        "it). Split it into smaller conditions, or into `let` constants and segments.",
        "let a = " + "not " * 10 + "true\n",
        checked=False,
    ),
    Code(
        "no-such-path",
        E,
        "a file or folder given to a command does not exist",
        "A command was given a path that is neither a `.rules` file nor a folder. Check the "
        "spelling, or run the command from the project's root folder.",
        "nudge check rulez/\n",
        checked=False,
    ),
    Code(
        "unreadable",
        E,
        "a rules file cannot be read",
        "The file exists but could not be read: it is not UTF-8 text, or its permissions do not "
        "allow reading it.",
        "nudge check rules/binary.rules\n",
        checked=False,
    ),
    Code(
        "no-rules",
        E,
        "a folder holds no `.rules` files",
        "A ruleset is every `.rules` file under a folder; this folder has none, so there is "
        "nothing to check or run. Rules files must end in `.rules`.",
        "nudge check empty_folder/\n",
        checked=False,
    ),
    # ------------------------------------------------------------------ templates
    Code(
        "missing-template",
        E,
        "a template that a `send` step names is not in the templates folder",
        "Where a ruleset has a `templates/` folder beside it (or `nudge check --templates DIR`), "
        "every `send email`, `send sms` and `send best` must find its files: `<name>.subject.txt` "
        "and `<name>.html` (and `<name>.txt`, optional) for email, `<name>.sms.txt` for sms, both "
        "for `best`. A ruleset without a templates folder is checked for its logic only.",
        'rule welcome\n    when signed_up\n    then\n        send email "welcom_1"\nend\n',
        checked=False,
    ),
    Code(
        "template-error",
        E,
        "a template does not render",
        "The template was found but rendering it with a sample contact and sample `with` data "
        "failed: a syntax error, an unknown filter, or an operation the sandbox refuses. The "
        "message names the template file and its line.",
        'rule welcome\n    when signed_up\n    then\n        send email "welcome_1"\nend\n',
        checked=False,
    ),
    # ------------------------------------------------------------------ declarations
    Code(
        "duplicate-name",
        E,
        "two declarations share a name",
        "Rules, constants, segments and tests each need a name of their own across the whole "
        "ruleset (every file of the folder shares one namespace). The note points at the first "
        "declaration of the name.",
        'let nordic = ["SE", "NO"]\nlet nordic = ["DK", "FI"]\n',
    ),
    Code(
        "duplicate-schema",
        E,
        "an event type or the contact has two schemas",
        "An event type may have one `event` schema, and the ruleset one `contact` schema, "
        "across all its files. Merge the fields into one declaration.",
        "event signed_up { source: string }\nevent signed_up { plan: string }\n",
    ),
    Code(
        "duplicate-field",
        E,
        "a schema declares a field twice, or an object gives one twice",
        "Each field of a schema is declared once, with one type; each key of an object "
        "(`with { ... }`, `emit e { ... }`) is given once (only the last would count).",
        "event signed_up { source: string, source: number }\n",
    ),
    Code(
        "unknown-type",
        E,
        "a schema uses a type that does not exist",
        "Field types are `string`, `number`, `bool`, `time`, `list` and `object`.",
        "contact { total_spent: integer }\n",
    ),
    Code(
        "reserved-field",
        E,
        "the contact schema gives an engine-kept field another type",
        "The engine keeps `score` (number), `stage` (string), `first_seen` and `last_seen` "
        "(time) and `segments` (list) on every contact. A contact schema may repeat them with "
        "the same type, or leave them out, but not change their type.",
        "contact { score: string }\n",
    ),
    Code(
        "unknown-channel",
        E,
        "a channel name that does not exist",
        "`send` takes `email`, `sms`, `webhook` or `best`; `policy ... limit` takes `email`, "
        "`sms`, `webhook`, `audience` or `show`.",
        'rule r\n    when signed_up\n    then\n        send mail "welcome_1"\nend\n',
    ),
    Code(
        "duplicate-policy",
        E,
        "a policy is declared twice",
        "Each channel has at most one `policy <channel> limit`, and the ruleset at most one "
        "`policy quiet hours`, across all files.",
        "policy email limit 3 per 7d\npolicy email limit 5 per 7d\n",
    ),
    # ------------------------------------------------------------------ names
    Code(
        "unknown-name",
        E,
        "a name that is not a constant, an event of this rule, `event` or `contact`",
        "A bare name in an expression must be a `let` constant, an event the rule triggers on "
        "(by its alias or its type name), `event` (the event that fired) or `contact`. "
        "The hint suggests the closest name in scope.",
        "rule r\n    when cart_updated as cart where crat.value > 0\n    then\n"
        "        score += 1\nend\n",
    ),
    Code(
        "unknown-segment",
        E,
        "a segment that is not declared",
        "`contact in S`, `entered S` and `left S` need a `segment S = ...` somewhere in the "
        "ruleset.",
        "segment vip = contact.total_spent > 1000\n\nrule r\n    when entered vpi\n    then\n"
        "        score += 1\nend\n",
    ),
    Code(
        "undeclared-event",
        W,
        "an event type close to a declared one, or to one the engine makes, itself undeclared",
        "An event type used by a rule that is neither declared (`event ping { ... }`) nor made "
        "by the engine or the connectors (`unsubscribed`, `score_changed`, `email_clicked`, ...), "
        "yet spelt almost like one of those, is most likely a typo: such a rule would wait for "
        "an event that never comes (`exit on unsubscribe` would never exit). Declare the type "
        "if it is meant, or fix its spelling.",
        "event ping { n: number }\n\nrule r\n    when pnig\n    then\n        score += 1\nend\n",
    ),
    Code(
        "unbound-event",
        E,
        "an event that is not reachable here",
        "An event's fields are reachable only where that event is bound: in the rule that "
        "triggers on it, after the point it matched. The second event of `not followed by` is "
        "the one that did not come, so only its own `where` sees it; the first event's `where` "
        "cannot see the second event; a `count(...)` condition sees only the counted event; a "
        "segment, a constant or a goal's condition sees no event of the rule. To ask about "
        "other events, use `count(E where ... within D)`.",
        "rule r\n    when cart_updated as cart\n         not followed by order_completed "
        "within 1h\n    if order_completed.value > 0\n    then\n        score += 1\nend\n",
    ),
    Code(
        "ambiguous-name",
        E,
        "a name that could mean two events",
        "Both events of a `followed by` have the same type, so the type name could mean "
        "either. Give them aliases (`as first`, `as second`) and use those.",
        "rule r\n    when page_viewed followed by page_viewed within 1h\n"
        '    if page_viewed.path == "/"\n    then\n        score += 1\nend\n',
    ),
    Code(
        "shadowed-name",
        E,
        "an alias or event type hides a constant",
        "An alias (`as x`) must not reuse the name of a `let` constant: inside the rule the name "
        "would mean the event, and the constant could no longer be reached. Neither may the type "
        "of an event the rule matches (`when nordic` with `let nordic = ...`): rename the constant. "
        "(An event type named `contact` is fine: in the rule, `contact` is the contact, and the "
        "event is `event` or its alias.)",
        'let cart = "k1"\n\nrule r\n    when cart_updated as cart\n    then\n'
        "        score += 1\nend\n",
    ),
    Code(
        "reserved-name",
        E,
        "a keyword used as a name",
        "Keywords (`event`, `contact`, `now`, `rule`, `when`, `in`, `count`, ...) keep their "
        "meaning everywhere, so they cannot name a constant, a segment, an alias or an event "
        "that `emit` makes: the name could never be reached. Field names may be keywords "
        "(`event.to`).",
        "rule r\n    when signed_up as event\n    then\n        score += 1\nend\n",
    ),
    Code(
        "duplicate-alias",
        E,
        "two events of one rule share a name",
        "The events of a `followed by` (or an `exit on`) need distinct aliases, or the name "
        "could mean either.",
        "rule r\n    when cart_updated as x followed by order_completed as x within 1h\n"
        "    then\n        score += 1\nend\n",
    ),
    Code(
        "alias-not-allowed",
        E,
        "the second event of `not followed by` has an alias",
        "The second event of `not followed by` is the one that must not come, so nothing after "
        "its own `where` can use it, and it takes no alias: refer to it by its type name inside "
        "its `where`.",
        "rule r\n    when cart_updated as cart\n         not followed by order_completed as order "
        "within 1h\n    then\n        score += 1\nend\n",
    ),
    Code(
        "not-constant",
        E,
        "a constant or test value reads something that changes",
        "A `let` is computed once when the ruleset loads (one that uses `now`, each time it "
        "is used), so it may use literals, earlier constants and `now`, but not `contact`, "
        "`event`, `count(...)` or segment membership. Values in tests (`given`, `at`, "
        "`expect ... with`) must be literals. Put conditions on the contact in a segment or in the rule itself.",
        "let big_spender = contact.total_spent > 1000\n",
    ),
    Code(
        "let-order",
        E,
        "a constant uses a constant declared after it",
        "A constant may use only the constants declared before it (files are read in path "
        "order), which also rules out constants defined in terms of each other.",
        'let nordic = scandinavia\nlet scandinavia = ["SE", "NO", "DK"]\n',
    ),
    Code(
        "segment-cycle",
        E,
        "segments defined in terms of each other",
        "A segment may use another segment (`contact in vip`), but not in a circle: then neither "
        "membership could be decided.",
        "segment a = contact in b\nsegment b = contact in a\n",
    ),
    # ------------------------------------------------------------------ types
    Code(
        "unknown-field",
        E,
        "a field that the schema does not declare",
        "Where an event type has an `event` schema, or the contact a `contact` schema, only the "
        "declared fields exist (plus the envelope fields `id`, `event`, `contact_id`, "
        "`timestamp` of events, and the contact's `score`, `stage`, `first_seen`, `last_seen` "
        "and `segments`). A field of a string, number, bool, time or list does not exist "
        "either. Events without a schema are not checked.",
        "event cart_updated { cart_id: string, value: number }\n\nrule r\n"
        "    when cart_updated as cart where cart.vaule > 0\n    then\n        score += 1\nend\n",
    ),
    Code(
        "type-mismatch",
        E,
        "values of types that do not go together",
        "Where both types are known (from schemas, literals and functions), comparing a string "
        "with a number, adding a string to a number, `startswith` on a number, a function "
        'argument of the wrong type, `score += "x"` or `set contact.f = ...` with a value of '
        "another type than the schema's are errors: at run time they would quietly be false or "
        "null.",
        "contact { country: string }\n\nrule r\n    when signed_up\n"
        "    if contact.country == 46\n    then\n        score += 1\nend\n",
    ),
    Code(
        "not-boolean",
        E,
        "a condition that is not true or false",
        "Conditions (`if`, `where`, `stop if`, segments, `and`/`or`/`not`) count only `true`; "
        "any other value, such as a string that is present, counts as false. Ask what you "
        "mean: `contact.email is not null`, `len(cart.items) > 0`.",
        "contact { email: string }\n\nrule r\n    when signed_up\n    if contact.email\n"
        "    then\n        score += 1\nend\n",
    ),
    Code(
        "unknown-function",
        E,
        "a function that does not exist",
        "The functions are `lower`, `upper`, `len`, `days_since`, `hours_since` and "
        "`count(E [where C] within D)`.",
        'rule r\n    when signed_up\n    if lowercase(event.source) == "ads"\n    then\n'
        "        score += 1\nend\n",
    ),
    Code(
        "bad-arguments",
        E,
        "a function called with the wrong number of arguments",
        "`lower`, `upper`, `len`, `days_since` and `hours_since` take exactly one argument; "
        "`count` is written `count(E [where C] within D)`.",
        "rule r\n    when signed_up\n    if len(event.source, 2) > 0\n    then\n"
        "        score += 1\nend\n",
    ),
    Code(
        "bad-regex",
        E,
        "`matches` with a regular expression that does not compile, or can run for ever",
        "The text after `matches` is a regular expression in Python's syntax; this one has an "
        "error (an unbalanced bracket, a dangling `*`, ...), or it repeats a group that itself "
        "repeats something of varying length, with nothing in each round that the inner "
        "repetition cannot match (`(a+)+`, `(\\w+\\s?)*`), or repeats alternatives that can "
        "start alike (`(a|aa)+`, `(.|\\s)*`), which can take exponential time on "
        "a string that almost matches: one event would stall the engine. (`(/[a-z]+)*` is fine: "
        "each round starts with a `/` the name cannot hold.) Make the inner repetition "
        "possessive (`\\w++`, `\\s?+`) or the group atomic (`(?>\\w+\\s?)*`). "
        "A pattern that comes from data at run time is held to the same rules (a refused one "
        'matches nothing). Escape special characters with a double backslash: `"\\\\.pdf$"`.',
        'rule r\n    when page_viewed where page_viewed.path matches "(pricing"\n    then\n'
        "        score += 1\nend\n",
    ),
    Code(
        "bad-number",
        E,
        "a number too large to hold",
        "Numbers are 64-bit floating point once they have a fraction or an exponent: one past "
        "about `1.8e308` cannot be held (it would be infinity, which no event or trait can "
        "carry). Check the exponent.",
        "let big = 1e400\n",
    ),
    Code(
        "compare-null",
        W,
        "a comparison with `null`",
        "Any comparison with null is false, `null == null` included, so `x == null` and "
        "`x != null` are never true. Write `x is null` or `x is not null`.",
        "rule r\n    when signed_up\n    if contact.email != null\n    then\n"
        "        score += 1\nend\n",
    ),
    Code(
        "time-number",
        W,
        "a time or a duration compared with a plain number",
        "Inside the engine a time is a number of epoch seconds, so `contact.renewal_at > 5` "
        "compares with the fifth second of 1970: it is almost always true. An age is a time "
        "subtracted from another, compared with a duration: `now - contact.renewal_at > 5d`; "
        "`days_since(contact.renewal_at) > 5` says the same. Likewise `now - "
        "contact.renewal_at > 30` compares the age with 30 seconds: write the unit, `30d`.",
        "contact { renewal_at: time }\n\nrule r\n    when signed_up\n"
        "    if contact.renewal_at > 5\n    then\n        score += 1\nend\n",
    ),
    Code(
        "read-only-field",
        E,
        "a step changes a contact field the engine keeps",
        "`segments`, `first_seen` and `last_seen` are kept by the engine and cannot be set or "
        "unset; `score` changes with `score += N`, and `stage` can be set but not unset.",
        "rule r\n    when signed_up\n    then\n        set contact.segments = []\nend\n",
    ),
    # ------------------------------------------------------------------ timing
    Code(
        "bad-duration",
        E,
        "a duration of zero",
        "Waits, windows, limits and `inactive for` need a duration longer than zero.",
        "rule r\n    when signed_up\n    then\n        wait 0s\n        score += 1\nend\n",
    ),
    Code(
        "long-duration",
        W,
        "a duration longer than 400 days",
        "Windows, waits and limits over 400 days keep events and timers around for more than a "
        "year; tests stop running timers 400 days after their last event. Check that the unit "
        "is right (`30d`, not `30w`).",
        "rule r\n    when signed_up\n    then\n        wait 60w\n        score += 1\nend\n",
    ),
    Code(
        "bad-time",
        E,
        "a time of day that does not exist",
        "Times of day run from `00:00` to `23:59`; midnight is `00:00`.",
        "policy quiet hours 22:00-24:00\n",
    ),
    Code(
        "empty-quiet-hours",
        W,
        "quiet hours that start and end at the same time",
        "A quiet period from a time to the same time is empty: nothing is ever deferred. To "
        "turn quiet hours off for a rule, write `no quiet hours`.",
        "policy quiet hours 08:00-08:00\n",
    ),
    Code(
        "bad-limit",
        E,
        "a limit or count of zero",
        "`limit 0 per D` would stop the rule from ever firing, `policy ... limit 0` would block "
        "the channel, and `0 E within D` can never happen. Use at least 1 (and remove a rule or "
        "a send you do not want).",
        "rule r\n    when signed_up\n    then\n        score += 1\n    limit 0 per 1d\nend\n",
    ),
    # ------------------------------------------------------------------ rules
    Code(
        "duplicate-clause",
        E,
        "a rule has a clause twice",
        "`limit`/`once`, `quiet hours`/`no quiet hours`, `priority` and `goal` may each appear "
        "once in a rule (`exit on` may repeat).",
        "rule r\n    when signed_up\n    then\n        score += 1\n    limit 1 per 1d\n"
        "    once\nend\n",
    ),
    Code(
        "bad-send",
        E,
        "`to` on a send that has no address",
        "`to` chooses the address of `send email` and `send sms`. `send best` picks email or "
        "sms when it runs and goes to the contact's `email` or `phone` accordingly (one address "
        "cannot serve both); a webhook goes to the endpoint configured under its name. Neither "
        "takes a `to`.",
        'rule r\n    when signed_up\n    then\n        send webhook "crm" to "https://x"\nend\n',
    ),
    Code(
        "useless-wait",
        W,
        "a `wait` with nothing after it",
        "A `wait` delays the steps that follow it; as the last step it delays nothing.",
        'rule r\n    when signed_up\n    then\n        send email "welcome_1"\n        wait 1d\nend\n',
    ),
    Code(
        "unreachable",
        W,
        "steps that can never run",
        "`stop if true` always ends the run, so the steps after it never run.",
        'rule r\n    when signed_up\n    then\n        stop if true\n        send email "x"\nend\n',
    ),
    Code(
        "never-fires",
        W,
        "a rule that can never fire",
        "The rule's condition (`if` or a trigger's `where`) is always false or null, so the rule "
        "never fires.",
        "rule r\n    when signed_up\n    if false\n    then\n        score += 1\nend\n",
    ),
    Code(
        "no-steps",
        W,
        "a rule with no steps",
        "The rule fires but does nothing. Add steps after `then`, or remove the rule.",
        "rule r\n    when signed_up\n    then\nend\n",
    ),
    Code(
        "useless-exit",
        W,
        "`exit on` in a rule that never waits",
        "`exit on E` cancels the rule's pending `wait` steps and its emails and texts that quiet "
        "hours deferred; a rule with neither a `wait` nor an email or sms has nothing to cancel, "
        "so the clause does nothing.",
        'rule r\n    when signed_up\n    then\n        send webhook "crm"\n'
        "    exit on order_completed\nend\n",
    ),
    Code(
        "useless-goal",
        W,
        "`goal` in a rule that sends nothing",
        "A conversion counts for the latest rule that sent the contact something (an email, an "
        "sms or a webhook) within the goal's window; a rule without a `send` step never has, "
        "so its goal never counts. Audience changes, `show` and score changes are no sends.",
        "rule r\n    when cart_updated\n    then\n        score += 5\n"
        "    goal order_completed within 3d\nend\n",
    ),
    Code(
        "emit-loop",
        W,
        "a rule emits the event it triggers on",
        "Each firing emits an event that fires the rule again, until the engine cuts the chain. "
        "Emit another event type, or add a `limit`.",
        "rule r\n    when signed_up\n    then\n        emit signed_up\nend\n",
    ),
    # ------------------------------------------------------------------ tests
    Code(
        "bad-timestamp",
        E,
        "a test timestamp that is not a real time",
        "Test timestamps are ISO 8601 with an offset (`2026-11-20T10:00:00Z`, "
        "`2026-11-20T11:00:00+01:00`) and must name a real date and time.",
        'test "t"\n    at 2026-02-30T10:00:00Z c1 signed_up\n    expect no email\nend\n',
    ),
    Code(
        "unordered-events",
        E,
        "test events out of time order",
        "A test's events form a timeline: each `at` must be at or after the one before it.",
        'test "t"\n    at 2026-11-20T10:00:00Z c1 signed_up\n'
        "    at 2026-11-20T09:00:00Z c1 page_viewed\n    expect no email\nend\n",
    ),
    Code(
        "unknown-contact",
        W,
        "a test names a contact it never gives",
        "A test that gives contacts (`given contact c1`) and then sends events to, or expects "
        "something of, another contact id probably has a typo. Contacts that only appear in "
        "events are fine in tests that give none (anonymous visitors).",
        'test "t"\n    given contact c1 { email: "a@example.com" }\n'
        "    at 2026-11-20T10:00:00Z c2 signed_up\n    expect no email\nend\n",
    ),
    Code(
        "unknown-action-kind",
        E,
        "`expect` with a kind that is not an action kind",
        "An expectation names an action kind: `email`, `sms`, `webhook`, `audience_add` (or "
        "`audience add`, as the step is written), `audience_remove` (or `audience remove`) or "
        "`show`.",
        'test "t"\n    at 2026-11-20T10:00:00Z c1 signed_up\n    expect c1 emial "welcome_1"\nend\n',
    ),
    Code(
        "unknown-target",
        W,
        "`expect` names a template or name no rule uses",
        "No rule sends that template (or webhook, audience or content), so a positive "
        "expectation always fails and `expect no` always passes. Check the spelling.",
        'rule r\n    when signed_up\n    then\n        send email "welcome_1"\nend\n\n'
        'test "t"\n    at 2026-11-20T10:00:00Z c1 signed_up\n    expect c1 email "welcome1"\nend\n',
    ),
    Code(
        "test-data",
        W,
        "test data that does not fit the schema",
        "A test event's properties (or an `identify`'s or `given`'s traits) name a field the "
        "schema does not declare, or give it a value of another type. The rules would not see "
        "the value the test means to send.",
        'event cart_updated { cart_id: string, value: number }\n\ntest "t"\n'
        '    at 2026-11-20T10:00:00Z c1 cart_updated { cart_id: "k1", vaule: 120 }\n'
        "    expect no email\nend\n",
    ),
    Code(
        "duplicate-contact",
        W,
        "a test gives the same contact twice",
        "Each `given contact` in a test should name a different contact; the later one replaces "
        "the earlier one's traits.",
        'test "t"\n    given contact c1 { email: "a@example.com" }\n'
        '    given contact c1 { email: "b@example.com" }\n    expect no email\nend\n',
    ),
    Code(
        "no-expectations",
        W,
        "a test that expects nothing",
        "A test without any `expect` always passes.",
        'test "t"\n    at 2026-11-20T10:00:00Z c1 signed_up\nend\n',
    ),
)

CODES: dict[str, Code] = {c.id: c for c in _ALL}


def diagnostic(code: str, message: str, span: Span, label: str = "", *notes: str) -> Diagnostic:
    """A diagnostic with the code's own severity. An unknown code is a bug in the checker."""
    return Diagnostic(code, CODES[code].severity, message, span, label, tuple(notes))


def markdown() -> str:
    """The reference page of every code (docs/diagnostics.md)."""
    lines = [
        "# Diagnostics",
        "",
        "Every message of `nudge check` ends with a stable code in brackets, such as",
        "`[unknown-field]`. Codes never change; tools and CI may match on them. Errors fail the",
        "check (exit status 1); warnings are shown but do not. `nudge check --format json` gives",
        "the same diagnostics as JSON objects with `code`, `severity`, `message`, `path`, `line`,",
        "`column`, `end_line`, `end_column`, `label` and `notes`.",
        "",
        "This page is generated from `dsl/codes.py`.",
        "",
        "| code | severity | what |",
        "|---|---|---|",
    ]
    for c in _ALL:
        lines.append(f"| [`{c.id}`](#{c.id}) | {c.severity.value} | {c.title} |")
    for c in _ALL:
        command = c.example.startswith("nudge ")
        lines += [
            "",
            f"## {c.id}",
            "",
            f"*{c.severity.value}*: {c.title}.",
            "",
            c.explanation,
            "",
            "```console" if command else "```",
            ("$ " if command else "") + c.example.rstrip("\n"),
            "```",
        ]
    return "\n".join(lines) + "\n"
