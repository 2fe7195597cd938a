# Resolvers exercising Python's traps, for the differential tests: each is
# compiled by fletch and run by CPython on the same random rows.
from __future__ import annotations

import math

from chalk.features import Features, features, online

LIMIT = 10
NAMES = ("ada", "bob", "")


@features
class Row:
    id: int
    a: int | None
    b: int | None
    x: float | None
    y: float | None
    s: str | None
    t: str | None
    flag: bool | None
    floordiv: int | None
    modulo: int | None
    ffloordiv: float | None
    fmodulo: float | None
    banker: int | None
    banker2: float | None
    truthy: str | None
    or_operand: float | None
    and_operand: int | None
    chained: bool | None
    int_of_float: int | None
    int_of_str: int | None
    float_of_str: float | None
    lowered: str | None
    uppered: str | None
    stripped: str | None
    length: int | None
    clamp: float | None
    grade: str | None
    membership: bool | None
    sqrt_log: float | None
    power: float | None
    ipower: int | None
    fstr: str | None
    fmt: str | None
    helper_out: float | None
    tuple_a: int | None
    tuple_b: str | None
    neg_zero: float | None
    none_eq: bool | None
    floor_ceil: int | None
    str_of: str | None
    ratio: float | None
    minmax: float | None
    nan_max: float | None
    aug: int | None
    ternary: str | None
    contains: bool | None
    index: str | None
    sliced: str | None


@online
def r_floordiv(a: Row.a, b: Row.b) -> Row.floordiv:
    return a // b


@online
def r_modulo(a: Row.a, b: Row.b) -> Row.modulo:
    return a % b


@online
def r_ffloordiv(x: Row.x, y: Row.y) -> Row.ffloordiv:
    return x // y


@online
def r_fmodulo(x: Row.x, y: Row.y) -> Row.fmodulo:
    return x % y


@online
def r_banker(x: Row.x) -> Row.banker:
    if x is None:
        return None
    return round(x)


@online
def r_banker2(x: Row.x) -> Row.banker2:
    return round(x, 2) if x is not None else None


@online
def r_truthy(x: Row.x, s: Row.s, flag: Row.flag) -> Row.truthy:
    # truthiness of 0.0, "", None
    if not x:
        return "falsy x"
    elif s:
        return "s"
    elif flag:
        return "flag"
    return "none"


@online
def r_or_operand(x: Row.x, a: Row.a) -> Row.or_operand:
    return x or a or 1.5


@online
def r_and_operand(a: Row.a, b: Row.b) -> Row.and_operand:
    return a and b


@online
def r_chained(a: Row.a, b: Row.b, x: Row.x) -> Row.chained:
    return 0 <= a < b <= x


@online
def r_int_of_float(x: Row.x) -> Row.int_of_float:
    return int(x)


@online
def r_int_of_str(s: Row.s) -> Row.int_of_str:
    return int(s)


@online
def r_float_of_str(s: Row.s) -> Row.float_of_str:
    return float(s)


@online
def r_lowered(s: Row.s) -> Row.lowered:
    return s.lower()


@online
def r_uppered(s: Row.s) -> Row.uppered:
    return s.upper() + "!"


@online
def r_stripped(s: Row.s) -> Row.stripped:
    if s is None:
        return None
    return s.strip()


@online
def r_length(s: Row.s, t: Row.t) -> Row.length:
    return len(s) + len(t or "")


@online
def r_clamp(x: Row.x) -> Row.clamp:
    return max(min(x, 100.0), -100.0)


@online
def r_grade(a: Row.a) -> Row.grade:
    if a is None:
        return "?"
    if a >= 90:
        grade = "A"
    elif a >= LIMIT:
        grade = "B"
    else:
        grade = "C"
    return grade


@online
def r_membership(a: Row.a, s: Row.s) -> Row.membership:
    return a in (1, 2, 3, None) or s in NAMES


@online
def r_sqrt_log(x: Row.x) -> Row.sqrt_log:
    return math.sqrt(x) + math.log(x + 1)


@online
def r_power(x: Row.x, y: Row.y) -> Row.power:
    return x ** y


@online
def r_ipower(a: Row.a) -> Row.ipower:
    return a ** 3 - 2 * a


@online
def r_fstr(a: Row.a, s: Row.s) -> Row.fstr:
    return f"{s}-{a}!"


@online
def r_fmt(x: Row.x, a: Row.a) -> Row.fmt:
    if x is None or a is None:
        return ""
    return f"{x:.2f}|{a:>6}|{x:,.1f}|{a:+d}|{x:.3e}|{x:g}|{a:08.2f}"


def _scale(v, factor=2.0):
    if v is None:
        return 0.0
    return v * factor


@online
def r_helper(x: Row.x, y: Row.y) -> Row.helper_out:
    return _scale(x) + _scale(y, factor=0.5)


@online
def r_tuple(a: Row.a, s: Row.s) -> Features[Row.tuple_a, Row.tuple_b]:
    if a is None:
        return 0, "none"
    return a * 2, (s or "") + "."


@online
def r_neg_zero(x: Row.x) -> Row.neg_zero:
    return -x * 0.0


@online
def r_none_eq(a: Row.a, x: Row.x) -> Row.none_eq:
    return a == x


@online
def r_floor_ceil(x: Row.x) -> Row.floor_ceil:
    return math.floor(x) + math.ceil(x)


@online
def r_str_of(a: Row.a, x: Row.x, flag: Row.flag) -> Row.str_of:
    return str(a) + "/" + str(x) + "/" + str(flag)


@online
def r_ratio(a: Row.a, x: Row.x) -> Row.ratio:
    return a / x


@online
def r_minmax(x: Row.x, y: Row.y, a: Row.a) -> Row.minmax:
    return min(x, y, a) + max(a, 0)


@online
def r_nan_max(x: Row.x, y: Row.y) -> Row.nan_max:
    return max(x, y) if x is not None and y is not None else -1.0


@online
def r_aug(a: Row.a, b: Row.b) -> Row.aug:
    total = 0
    total += a
    total *= 3
    total -= b
    return total


@online
def r_ternary(s: Row.s, t: Row.t) -> Row.ternary:
    return s if len(s or "") > len(t or "") else t


@online
def r_contains(s: Row.s, t: Row.t) -> Row.contains:
    return t in s


@online
def r_index(s: Row.s, a: Row.a) -> Row.index:
    return s[a]


@online
def r_sliced(s: Row.s, a: Row.a) -> Row.sliced:
    if s is None or a is None:
        return s
    return s[1:] + "|" + s[:a] + "|" + s[-3:-1] + "|" + s[a:a + 2]
