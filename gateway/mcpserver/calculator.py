"""A calculator that evaluates arithmetic safely: the expression is parsed with :mod:`ast`
and only numbers, arithmetic operators, a few math functions and constants are walked.
No names, attributes, calls of anything else, or huge powers: nothing a student types
can run code or stall the server."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_LENGTH = 500
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e300

BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos,
                                                          ast.USub: operator.neg}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "log": math.log, "log10": math.log10,
    "log2": math.log2, "exp": math.exp, "abs": abs, "round": round, "floor": math.floor,
    "ceil": math.ceil, "factorial": math.factorial, "min": min, "max": max,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculationError(ValueError):
    """The expression is not arithmetic this calculator does (said in words)."""


def _check(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or abs(value) > MAX_MAGNITUDE):
        raise CalculationError("The result is too large (or not a number).")
    if isinstance(value, int) and abs(value) > 10 ** 300:
        raise CalculationError("The result is too large.")
    return value


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"Exponents above {MAX_EXPONENT} are not calculated.")
        try:
            return _check(BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculationError("Division by zero.") from None
        except OverflowError:
            raise CalculationError("The result is too large.") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS and not node.keywords):
        arguments = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and (not arguments or arguments[0] > 200):
            raise CalculationError("factorial takes a whole number up to 200.")
        try:
            return _check(FUNCTIONS[node.func.id](*arguments))
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalculationError(f"{node.func.id}: {exc}.") from None
    if isinstance(node, ast.Name):
        raise CalculationError(f"Unknown name '{node.id}'. Known: "
                               f"{', '.join(sorted([*FUNCTIONS, *CONSTANTS]))}.")
    raise CalculationError("Only numbers, + - * / // % **, parentheses and the functions "
                           f"{', '.join(sorted(FUNCTIONS))} are allowed.")


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression (``^`` is taken as a power, as people write it)."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalculationError("The expression is empty.")
    if len(text) > MAX_LENGTH:
        raise CalculationError(f"The expression is longer than {MAX_LENGTH} characters.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculationError(f"'{expression}' is not an arithmetic expression.") from None
    value = _eval(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value
