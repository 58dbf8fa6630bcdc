#!/usr/bin/env python3
"""Prints each failed test of a VSTest .trx file: its name, the assertion's message and the end of its output.

build.sh test runs it after the test projects so that the last lines CI keeps (the tail of the log) name what failed
and why, not only how many: a test that failed once must be findable from that tail alone.
"""
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
MESSAGE_LINES = 12
OUTPUT_LINES = 30


def tail(text: str, count: int) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-count:]


def main(paths: list[str]) -> int:
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as error:
            print(f"{path}: unreadable ({error})")
            continue
        for result in root.iterfind(".//t:UnitTestResult", NS):
            if result.get("outcome") != "Failed":
                continue
            print(f"FAILED {result.get('testName')} ({result.get('duration')})")
            message = result.findtext("t:Output/t:ErrorInfo/t:Message", default="", namespaces=NS)
            for line in message.splitlines()[:MESSAGE_LINES]:
                print(f"  | {line}")
            output = result.findtext("t:Output/t:StdOut", default="", namespaces=NS)
            for line in tail(output, OUTPUT_LINES):
                print(f"  > {line[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
