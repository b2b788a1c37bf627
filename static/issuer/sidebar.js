'use strict';
// The back office's top navigation covers Django's sidebar, so the sidebar starts collapsed (lists keep their
// width at 1440 px); a person who opens it keeps it open, as Django remembers their choice.
if (window.localStorage.getItem('django.admin.navSidebarIsOpen') === null) {
    window.localStorage.setItem('django.admin.navSidebarIsOpen', 'false');
}
