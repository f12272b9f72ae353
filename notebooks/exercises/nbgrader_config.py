"""nbgrader configuration of the wslab exercises.

Run nbgrader from this directory (``cd notebooks/exercises``), or pass
``--CourseDirectory.root=notebooks/exercises``. See docs/instructors.md.
"""

import copy

from nbgrader import utils
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearOutput,
    DeduplicateIds,
    OverwriteCells,
    OverwriteKernelspec,
)

c = get_config()  # noqa: F821 - nbgrader provides get_config() when it loads this file

c.CourseDirectory.course_id = "wslab"
# The gradebook (sqlite) and the submitted/, autograded/ and feedback/ folders
# live next to this file and are git-ignored; source/ and release/ are committed.

# Autograding: a cell that runs longer than this is interrupted and fails. A
# graded part stops an endless loop itself after 30 s (wslab.check.TIME_LIMIT)
# and the tests wait at most a few seconds for a student's server, so 60 s is
# the last resort. Students' `nbgrader validate` does not read this file: set
# the same value in the configuration they share (docs/instructors.md).
c.Execute.timeout = 60


class RestoreHiddenTests(OverwriteCells):
    """OverwriteCells that tells restoring hidden tests from tampering.

    Autograding puts the source version of every test cell back, hidden tests
    included. nbgrader's OverwriteCells then logs "Attribute 'checksum' for
    cell ... has changed!" for every test cell of every student, because the
    released cell (without its hidden tests) differs from the source. Here that
    expected difference is logged at debug level only; a test cell that differs
    from the released one (the student edited a read-only cell) still gets a
    warning, which is now the only kind there is.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        self._cell = cell
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr == "checksum" and new == self._released_checksum(name):
            self.log.debug("Cell %s: hidden tests restored", name)
            return
        if attr == "checksum":
            self.log.warning(
                "Cell %s differs from the released version (edited by the student?): "
                "the source version is graded instead",
                name,
            )
            return
        super().report_change(name, attr, old, new)

    def _released_checksum(self, name):
        """The checksum of the cell as it was released: its source without hidden tests."""
        source = self.gradebook.find_source_cell(name, self.notebook_id, self.assignment_id)
        released = copy.deepcopy(self._cell)
        released.source = source.source
        ClearHiddenTests()._remove_hidden_test_region(released)
        return utils.compute_checksum(released)


# nbgrader 0.9's list, with RestoreHiddenTests in place of OverwriteCells.
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreHiddenTests,
    CheckCellMetadata,
]
