"""Plug-in modules with one mistake each, for testing how spindle reports them.

Each module declares osc_isa_plugins; the runner's hello answers with these errors
(``class`` of the error in brackets):

- importerror    the module's __init__.py fails to import (a helper needs a missing library):
                 [faulty.importerror], file helpers.py, the message holds the traceback.
- classimport    the file of the declared class fails while imported (NameError):
                 [faulty.classimport.Array.Array], traceback included.
- unresolved     a misspelt class and a file that does not exist:
                 [faulty.unresolved.Array.FastArray], [faulty.unresolved.NoSuchFile.Thing].
- missingvar     the class does not set plugin_ability: [faulty.missingvar.Array.Array].
- badversion     plugin_version "1.0.1" has no release: [faulty.badversion.Array.Array].
- mixedversions  First says 1.2.0-1, Second 1.2.1-1: First is offered,
                 [faulty.mixedversions.Second.Second] is refused.
- wrongbase      one class derives from object, one from IFileSystemPlugin:
                 [faulty.wrongbase.Array.NotAPlugin], [faulty.wrongbase.Array.FileSystemThing].
"""
