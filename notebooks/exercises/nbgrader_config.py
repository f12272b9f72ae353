"""nbgrader configuration of the wslab exercises.

Run nbgrader from this directory (``cd notebooks/exercises``), or pass
``--CourseDirectory.root=notebooks/exercises``. See docs/instructors.md.
"""

c = get_config()  # noqa: F821 - nbgrader provides get_config() when it loads this file

c.CourseDirectory.course_id = "wslab"
# The gradebook (sqlite) and the submitted/, autograded/ and feedback/ folders
# live next to this file and are git-ignored; source/ and release/ are committed.

# Autograding: a cell that runs longer than this is interrupted and fails. The
# tests wait at most a few seconds for a student's server, so 60 s is generous.
c.Execute.timeout = 60
