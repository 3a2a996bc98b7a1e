#!/usr/bin/python3
"""Reference renderings of chat templates with Jinja2 itself (Debian's python3-jinja2).

Usage: chat_template_reference.py OUT_DIR

Reads chat_templates.json (next to this script: Hugging Face checkpoints' chat_template
strings, verbatim, with each checkpoint's bos/eos tokens) and writes OUT_DIR/cases.json: for
every template and several conversations, with add_generation_prompt false and true, the text
transformers' apply_chat_template(tokenize=False) renders, or the error it raises. Then the
same for small feature templates (whitespace control, filters, tests, scoping, errors) that
exercise the language directly.

The environment is the one transformers builds (utils/chat_template_utils.py,
_compile_jinja_template): ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]), the global raise_exception (raises
TemplateError(message)) and strftime_now, and tojson = json.dumps(x, ensure_ascii=False,
indent=indent, separators=separators, sort_keys=sort_keys). render() gets messages, tools=None,
documents=None, add_generation_prompt and the tokenizer's special tokens (bos_token,
eos_token, ... only those the tokenizer has). strftime_now formats a fixed time,
2024-07-26 10:30:00, so the test can give the C++ renderer the same.
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

NOW = datetime.datetime(2024, 7, 26, 10, 30, 0)


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def user(c):
    return {"role": "user", "content": c}


def assistant(c):
    return {"role": "assistant", "content": c}


def system(c):
    return {"role": "system", "content": c}


CONVERSATIONS = {
    "user": [user("Name a colour.")],
    "exchange": [user("Name a colour."), assistant("Blue.")],
    "system_exchange": [system("You are terse."), user("Name a colour."), assistant("Blue.")],
    "multi_turn": [user("Hi!"), assistant("Hello. How can I help?"), user("Count to 3."),
                   assistant("1, 2, 3.")],
    "system_multi_turn": [system("Answer in French."), user("Hi!"), assistant("Bonjour !"),
                          user("Thanks.")],
    "unicode_spaces": [user("  Grüße, 世界! \"quoted\" 'single' \\backslash\n\n"),
                       assistant(" Tschüss \u00a0\n")],
    "empty_contents": [user(""), assistant("")],
    "not_alternating": [user("one"), user("two")],
    "unknown_role": [{"role": "critic", "content": "Too long."}, user("Hi")],
}

# Small templates that exercise the language; rendered with the variables below.
FEATURES = [
    "  {% if true %}x{% endif %}\n  y\n",
    "a\n  {% if true %}\n    b\n  {% endif %}\nc\n",
    "{{ 'a' }}  \n  {%- if true -%}  \n b \n {%- endif %}\n\nz",
    "{{ 1 }} {# c #}\n  {#- c2 -#}  {{ 2 }}\n{# c3 #}\n3",
    "  {%+ if true %}keep{% endif %}\n",
    "{% if true +%}\nx{% endif %}",
    "{{- ' a ' -}}\n\n{{ 'b' }}\n{{- 'c' }}",
    "x\r\ny\r{{ 'z' }}\n\n",
    "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
    "{{ loop.length }}{{ loop.revindex }}|{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ m.role }}{{ loop.index }} {% else %}none"
    "{% endfor %}",
    "{% for m in [] %}x{% else %}empty{% endfor %}",
    "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}"
    "{% endif %}{{ i }}{% endfor %}",
    "{% for k, v in {'a': 1, 'b': [2, 3]}.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}",
    "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(found=false, n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
    "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}",
    "{% set a, b = 1, 'two' %}{{ a }}{{ b }}",
    "{% set block %}inner {{ 1 + 1 }}{% endset %}[{{ block }}]",
    "{{ messages[1:] | length }} {{ messages[-1].role }} {{ messages[::-1][0].content }}",
    "{{ 'héllo'[1:3] }} {{ 'héllo'[-1] }} {{ 'héllo' | length }} {{ 'abcdef'[::2] }}",
    "{{ 1 + 2 * 3 - 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}",
    "{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 3 / 3 }}",
    "{{ 'a' ~ 1 ~ none ~ true }} {{ 'x' * 3 }} {{ [1] + [2] }}",
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'cat' }} {{ 'z' not in ['a'] }} {{ 'k' in {'k': 1} }}",
    "{{ not true or false and true }} {{ none or 'd' }} {{ 0 and 1 }} {{ 'x' if false }}|",
    "{{ 'y' if 1 > 2 else 'n' }} {{ undefined_var }}|{{ undefined_var is defined }}",
    "{{ x is none }} {{ x is not none }} {{ 'a' is string }} {{ {} is mapping }} {{ 3 is odd }}"
    " {{ 4 is divisibleby 2 }} {{ 1 is number }} {{ [] is iterable }} {{ 'a' is equalto 'a' }}",
    "{{ '  pad  ' | trim }}|{{ 'MiXed' | upper }}{{ 'MiXed' | lower }}|{{ none | default('d') }}"
    "|{{ undefined_var | default('d') }}|{{ '' | default('e', true) }}",
    "{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }} {{ ['a', 'b'] | join(', ') }} "
    "{{ 'aXbX' | replace('X', '-') }} {{ 3 | string }} {{ 'ab' | list }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} "
    "{{ messages | map(attribute='role') | join(',') }} {{ [1, 2, 1] | unique | list }}",
    "{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
    "{{ {'b': 1, 'a': [1, 'x', none, true, 1.5]} | tojson }}",
    "{{ {'b': 1, 'a': {'c': 'é\"\\n'}} | tojson(indent=2) }}",
    "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true, separators=(',', ':')) }}",
    "{{ [1, 'a', none, true, {'k': \"it's\"}] }} {{ {'a': 'b'} }} {{ none }} {{ true }}",
    "{{ '  Hi there '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'Hi'.lower() }}{{ 'hi'.upper() }}"
    "|{{ 'a b  c'.split() }}|{{ 'a,b'.split(',') }}|{{ 'abc'.startswith('ab') }}"
    "{{ 'abc'.endswith(('x', 'c')) }}|{{ {'k': 1}.get('k') }}{{ {'k': 1}.get('z', 'd') }}",
    "{{ 'hello world'.title() }} {{ 'hello'.capitalize() }} {{ '-'.join(['a', 'b']) }}",
    "{{ messages[0]['role'] }} {{ messages[0].content | trim }} {{ messages.0.role }}",
    "{% if messages[0]['role'] == 'system' %}{% set messages = messages[1:] %}{% endif %}"
    "{{ messages | length }}",
    "{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools is none }}"
    "{{ documents is none }}",
    "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%B %d, %Y') }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
    "{{ greet('Ann') }} {{ greet('Bo', punct='?') }} {{ greet('Cy', '.') }} {{ greet() }}",
    "{% macro count(n) %}{{ n }}{% if n > 0 %},{{ count(n - 1) }}{% endif %}{% endmacro %}"
    "{{ count(3) }}",
    "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
    "{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}",
    "{%- macro m(x) %}\n  {{- x | upper }}\n{%- endmacro %}\n[{{ m('a') }}] {{ m('b') ~ '!' }}",
    "{{ raise_exception('custom message') }}",
    "{{ undefined_var.attr }}",
    "{{ 'a' + 1 }}",
    "{% for %}",
    "{% if true %}unclosed",
    "{{ 1 +* 2 }}",
]

FEATURE_MESSAGES = [system("Be brief. "), user(" Hi "), assistant("Hello")]


def render(env, source, variables):
    try:
        return {"expected": env.from_string(source).render(**variables)}
    except jinja2.exceptions.TemplateError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    except Exception as e:  # TypeError etc. raised while rendering
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    out_dir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "chat_templates.json"), encoding="utf-8") as f:
        templates = json.load(f)["templates"]
    env = environment()
    cases = []
    for t in templates:
        special = {k: t[k] for k in ("bos_token", "eos_token") if t.get(k) is not None}
        for conv_name, messages in CONVERSATIONS.items():
            for gen in (False, True):
                variables = dict(messages=messages, tools=None, documents=None,
                                 add_generation_prompt=gen, **special)
                case = {"name": f"{t['name']}/{conv_name}/gen={gen}", "template": t["name"],
                        "source": t["chat_template"], "variables": variables}
                case.update(render(env, t["chat_template"], variables))
                cases.append(case)
    for i, source in enumerate(FEATURES):
        variables = dict(messages=FEATURE_MESSAGES, tools=None, documents=None,
                         add_generation_prompt=True, bos_token="<s>", eos_token="</s>")
        case = {"name": f"feature/{i}", "template": "", "source": source,
                "variables": variables}
        case.update(render(env, source, variables))
        cases.append(case)
    now = [NOW.year, NOW.month, NOW.day, NOW.hour, NOW.minute, NOW.second]
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"jinja2_version": jinja2.__version__, "now": now, "cases": cases}, f,
                  ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
