"""Unit conversion over a fixed table (length, mass, volume, time, speed, area, data,
temperature); unit names and common abbreviations, case ignored."""

from __future__ import annotations

# Each unit: (dimension, factor to the dimension's base unit).
UNITS: dict[str, tuple[str, float]] = {}


def _add(dimension: str, factor: float, *names: str) -> None:
    for name in names:
        UNITS[name.lower()] = (dimension, factor)


_add("length", 1.0, "m", "meter", "meters", "metre", "metres")
_add("length", 1000.0, "km", "kilometer", "kilometers", "kilometre", "kilometres")
_add("length", 0.01, "cm", "centimeter", "centimeters")
_add("length", 0.001, "mm", "millimeter", "millimeters")
_add("length", 0.0254, "in", "inch", "inches")
_add("length", 0.3048, "ft", "foot", "feet")
_add("length", 0.9144, "yd", "yard", "yards")
_add("length", 1609.344, "mi", "mile", "miles")
_add("length", 1852.0, "nmi", "nautical mile", "nautical miles")
_add("mass", 1.0, "kg", "kilogram", "kilograms")
_add("mass", 0.001, "g", "gram", "grams")
_add("mass", 1e-6, "mg", "milligram", "milligrams")
_add("mass", 1000.0, "t", "tonne", "tonnes")
_add("mass", 0.45359237, "lb", "lbs", "pound", "pounds")
_add("mass", 0.028349523125, "oz", "ounce", "ounces")
_add("volume", 1.0, "l", "liter", "liters", "litre", "litres")
_add("volume", 0.001, "ml", "milliliter", "milliliters")
_add("volume", 3.785411784, "gal", "gallon", "gallons")
_add("volume", 0.2365882365, "cup", "cups")
_add("volume", 1000.0, "m3", "cubic meter", "cubic meters")
_add("time", 1.0, "s", "sec", "second", "seconds")
_add("time", 60.0, "min", "minute", "minutes")
_add("time", 3600.0, "h", "hr", "hour", "hours")
_add("time", 86400.0, "d", "day", "days")
_add("time", 604800.0, "week", "weeks")
_add("speed", 1.0, "m/s", "mps")
_add("speed", 1000 / 3600, "km/h", "kph", "kmh")
_add("speed", 1609.344 / 3600, "mph")
_add("speed", 1852 / 3600, "kn", "knot", "knots")
_add("area", 1.0, "m2", "square meter", "square meters")
_add("area", 10000.0, "ha", "hectare", "hectares")
_add("area", 4046.8564224, "acre", "acres")
_add("area", 1e6, "km2", "square kilometer", "square kilometers")
_add("data", 1.0, "b", "byte", "bytes")
_add("data", 1e3, "kb", "kilobyte", "kilobytes")
_add("data", 1e6, "mb", "megabyte", "megabytes")
_add("data", 1e9, "gb", "gigabyte", "gigabytes")
_add("data", 1024.0, "kib", "kibibyte")
_add("data", 1024.0 ** 2, "mib", "mebibyte")
_add("data", 1024.0 ** 3, "gib", "gibibyte")
TEMPERATURES = {"c": "C", "celsius": "C", "°c": "C", "f": "F", "fahrenheit": "F", "°f": "F",
                "k": "K", "kelvin": "K"}


class UnitError(ValueError):
    """A unit this converter does not know, or two units of different kinds."""


def _to_kelvin(value: float, unit: str) -> float:
    return {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"C": value - 273.15, "F": (value - 273.15) * 9 / 5 + 32, "K": value}[unit]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    source, target = from_unit.strip().lower(), to_unit.strip().lower()
    if source in TEMPERATURES or target in TEMPERATURES:
        if source not in TEMPERATURES or target not in TEMPERATURES:
            raise UnitError(f"'{from_unit}' and '{to_unit}' are not both temperatures.")
        result = _from_kelvin(_to_kelvin(value, TEMPERATURES[source]), TEMPERATURES[target])
        return round(result, 10)
    for name in (source, target):
        if name not in UNITS:
            raise UnitError(f"Unknown unit '{name}'. Known: {', '.join(sorted(UNITS))}, "
                            "C, F, K.")
    (kind_a, factor_a), (kind_b, factor_b) = UNITS[source], UNITS[target]
    if kind_a != kind_b:
        raise UnitError(f"'{from_unit}' is a {kind_a} and '{to_unit}' a {kind_b}; they do not "
                        "convert.")
    return round(value * factor_a / factor_b, 10)
