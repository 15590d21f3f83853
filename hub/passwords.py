"""Password rules: a minimum length, a maximum length, and no well-known password.

One function, :func:`password_problem`, says what is wrong with a password (or
None); :func:`hub.accounts.check_password` turns that into an ``AccountError``
and every way of setting a password (CLI, roster import, the hub's password
page, an admin reset) goes through it.

The list below holds the most common passwords of public breach corpora that are
long enough to pass the length check, plus classroom-flavoured ones (school,
student, classroom...). It is short on purpose: it stops the passwords people
actually pick first, not a determined attacker; the lockout does the rest.
"""

from __future__ import annotations

import secrets

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

COMMON_PASSWORDS: frozenset[str] = frozenset(
    """
    password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword
    12345678 123456789 1234567890 0123456789 87654321 987654321 11111111 00000000
    12341234 123123123 123456123 147258369 159753258 741852963 963852741 1q2w3e4r
    1q2w3e4r5t 1qaz2wsx 1qazxsw2 zaq12wsx qwertyui qwertyuiop qwerty123 qwerty12
    qwerty1234 asdfghjk asdfghjkl asdf1234 zxcvbnm1 zxcvbnm123 abcd1234 abc12345
    abcdefgh abcdefg1 aa123456 a1234567 a12345678 iloveyou iloveyou1 sunshine
    princess football baseball basketball superman starwars trustno1 whatever
    welcome1 welcome123 letmein1 letmein123 master123 monkey123 dragon123 shadow123
    computer internet jennifer michelle jessica1 charlie1 freedom1 samsung1 liverpool
    chelsea1 arsenal1 babygirl lovelove loveyou1 mustang1 access14 changeme
    changeme1 default1 administrator admin123 admin1234 adminadmin rootroot
    test1234 testtest qweasdzxc q1w2e3r4 q1w2e3r4t5 1234qwer 12qwaszx
    unknown1 secret12 secret123 hello123 hellohello summer2024 winter2024
    spring2024 autumn2024 summer2025 winter2025 summer2026 winter2026
    student student1 student12 student123 students teacher1 teacher123
    classroom classroom1 school12 school123 schoolschool jupyter1 jupyter123
    jupyterhub notebook chatgpt1 openai123 korea123 seoul123 sarang12 saranghae
    """.split()
)


def password_problem(password: object, username: str | None = None) -> str | None:
    """Why ``password`` may not be used, as a sentence; None when it is fine."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    folded = password.strip().lower()
    if folded in COMMON_PASSWORDS:
        return "That password is one of the most common ones; choose another."
    if username and folded == username.lower():
        return "The password must not be the username."
    if len(set(folded)) < 3:
        return "The password must use more than two different characters."
    return None


# No 0/o, 1/l/i: passwords are read aloud and copied from a projector.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password(groups: int = 4, group_size: int = 4) -> str:
    """A random password like ``k7dx-mq2p-...`` (16 symbols, about 79 bits)."""
    return "-".join(
        "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(group_size))
        for _ in range(groups)
    )
