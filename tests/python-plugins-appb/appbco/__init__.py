    """
@copyright: Copyright (C) 2008, 2010 Oracle and/or its affiliates. All rights
reserved.

@license:   This program is free software; you can redistribute it and/or
            modify it under the terms of the GNU General Public
            License as published by the Free Software Foundation, version 2.

            This program is distributed in the hope that it will be useful,
            but WITHOUT ANY WARRANTY; without even the implied warranty of
            MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU
            General Public License for more details.

            You should have received a copy of the GNU General Public
            License along with this program; if not, write to the Free Software
            Foundation, Inc., 59 Temple Place - Suite 330, Boston,
            MA 02110-1307, USA

@summary:   This is just to enable the import of the plugins.
    """

#
# This is a major hack to get around RPM's limitation of not being able
# to specify the same file for multiple RPM installs
#
# Exit codes:
# 0 : No more dependencies
# 1 : ERROR condition
# 2 : Still have dependencies
#
if __name__ == '__main__':
    import sys
    import os
    if len(sys.argv) <= 1:
        print "ERROR: No vendor dir given!"
        sys.exit(1)

    try:
        vendor_dirs = os.listdir(sys.argv[1])
        ref_count = 0
        for vendor_dir in vendor_dirs:
            vendor_path = os.path.join(sys.argv[1], vendor_dir)
            if os.path.isdir(vendor_path):
                ref_count += 1

    except Exception, e:
        print "ERROR:", e
        sys.exit(1)

    if ref_count > 1:
        sys.exit(2)

    sys.exit(0)

