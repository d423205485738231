"""The pass/fail tally that every Python test driver shares: one line per check, a summary line, the exit status,
and the choice of one case to run.

A driver imports it by path (tests/ is no package):

    sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
    from checks import Tally

    tally = Tally("plugin test")
    if tally.case("warm cache"):          # a named case; False when --only / TEST_ONLY leaves it out
        tally.check("one round trip", execs == 1, f"saw {execs} EXEC")
    tally.skip("noexec cache", "cannot mount a tmpfs here")   # could not run: counted apart, never as passed
    sys.exit(tally.finish())

What it prints (three spaces in, so the lines sit under the stage scripts' `== step ==` headers):

       ok   WHAT
       FAIL WHAT: DETAIL           (a detail of several lines continues indented below)
       SKIP WHAT: WHY
    N passed, N failed, N skipped (NAME)

The summary line starts with the counts, so a script may grep it (`^[1-9][0-9]* passed, 0 failed`).

finish() returns the exit status: 1 when a check failed, and 1 as well when no check ran at all (a run that
asserted nothing proves nothing, whatever it skipped); 0 otherwise.

One case: `--only SUBSTRING` on the driver's command line (only_from_argv takes it out of sys.argv) or
TEST_ONLY=SUBSTRING in the environment, which passes through tests/run and the stage scripts. Drivers with named
cases honour it through case(); a driver none of whose cases matches fails, naming its cases, so a misspelt name
never passes as a run. Where each case starts from the state the one before left (one node, one module cache),
the driver makes its tally with chained=True: then the cases before the first match run too, and none after it.
"""
import os
import sys

ONLY_ENV = "TEST_ONLY"


def only_from_argv(argv=None):
    """Takes `--only SUBSTRING` out of argv (sys.argv by default) and returns SUBSTRING, else TEST_ONLY, else
    None. Drivers call it before reading their own positional arguments."""
    argv = sys.argv if argv is None else argv
    if "--only" in argv:
        i = argv.index("--only")
        if i + 1 >= len(argv):
            sys.exit("--only needs a case name (or part of one)")
        only = argv[i + 1]
        del argv[i:i + 2]
        return only
    return os.environ.get(ONLY_ENV) or None


class Tally:
    """Counts checks (passed, failed) and skips, prints one line for each, and ends with a summary line.

    name: what the summary line names (a driver, an ansible-core version, a stage).
    only: the case filter (default: only_from_argv()); chained: see the module's doc.
    show_passes: False prints failures and skips only (for a driver of a hundred cases); the counts stay whole.
    detail_on_pass: also print a passing check's detail (a measured figure, the message a refusal gave).
    """

    def __init__(self, name, only=None, chained=False, show_passes=True, detail_on_pass=False):
        self.name = name
        self.only = only if only is not None else only_from_argv()
        self.chained = chained
        self.show_passes = show_passes
        self.detail_on_pass = detail_on_pass
        self.passed = 0
        self.failed = 0
        self.failures = []  # (what, detail) of each failed check, for a driver's own summary
        self.skipped = []   # (what, why)
        self.notes = []
        self.cases = []     # every case name offered, for the message when none matches
        self.cases_run = 0
        self._matched = False

    def case(self, name, header=True):
        """Starts the case NAME: returns whether it runs under the filter, and prints `-- NAME` when it does."""
        self.cases.append(name)
        if self.only is None:
            run = True
        elif self.chained:
            run = not self._matched
            self._matched = self._matched or self.only in name
        else:
            run = self.only in name
            self._matched = self._matched or run
        if run:
            self.cases_run += 1
            if header:
                print(f"-- {name}", flush=True)
        return run

    def check(self, what, ok, detail=""):
        """One assertion: prints its line, counts it, and returns ok (so a driver can stop a case early)."""
        ok = bool(ok)
        detail = str(detail or "")
        if ok:
            self.passed += 1
            if self.show_passes:
                print(f"   ok   {what}" + (f": {detail}" if detail and self.detail_on_pass else ""), flush=True)
        else:
            self.failed += 1
            self.failures.append((what, detail))
            print(f"   FAIL {what}" + (": " + detail.replace("\n", "\n        ") if detail else ""), flush=True)
        return ok

    def skip(self, what, why):
        """A case or check that could not run here: said with why, counted apart, never as passed."""
        self.skipped.append((what, why))
        print(f"   SKIP {what}: {why}", flush=True)

    def note(self, text):
        """A measured figure worth reporting: printed now and again above the summary line."""
        self.notes.append(text)
        print(f"   note {text}", flush=True)

    def summary(self):
        return f"{self.passed} passed, {self.failed} failed, {len(self.skipped)} skipped ({self.name})"

    def finish(self):
        """Prints the notes, the filter's effect and the summary line; returns the exit status."""
        for n in self.notes:
            print(f"   {n}")
        if self.only is not None and self.cases:
            if not self._matched:
                print(f"   FAIL no case matches {self.only!r} (cases: {'; '.join(self.cases)})")
                print(self.summary())
                return 1
            if self.chained:
                # The cases after the match were never offered, so there is no total to give.
                print(f"   only {self.only!r}: {self.cases_run} cases run, up to the first whose name holds it"
                      " (each case builds on the one before)")
            else:
                print(f"   only {self.only!r}: {self.cases_run} of {len(self.cases)} cases run")
        print(self.summary(), flush=True)
        if self.passed + self.failed == 0:
            print("   FAIL no check ran")
            return 1
        return 1 if self.failed else 0
