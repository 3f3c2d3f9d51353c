// Keyboard and magnifier for the case page (served from /static/, as the page's CSP allows no inline script).
// Every decision stays a plain form POST; this only presses the page's own buttons and follows its own links.
(function () {
  'use strict';
  var sent = false;
  function byId(id) { return document.getElementById(id); }
  function press(id) {
    var button = byId(id);
    if (!button || sent) return false;
    sent = true; // one decision per page: a held key must not post twice
    button.click();
    return true;
  }
  function follow(id) {
    var link = byId(id);
    if (!link || sent) return false;
    sent = true;
    window.location.assign(link.href);
    return true;
  }
  function reject(n) {
    var reason = byId('reason');
    if (!reason || n < 1 || n > reason.options.length) return false;
    reason.selectedIndex = n - 1;
    return press('reject');
  }

  // The magnifier: a lens over the overview showing it three times larger under the pointer.
  var picture = byId('overview');
  var lens = byId('lens');
  var zooming = false;
  var at = null;
  var ZOOM = 3;
  function place() {
    if (!zooming || !picture || !lens) return;
    var box = picture.getBoundingClientRect();
    var x = at ? at.x - box.left : box.width / 2;
    var y = at ? at.y - box.top : box.height / 2;
    x = Math.max(0, Math.min(box.width, x));
    y = Math.max(0, Math.min(box.height, y));
    var size = lens.offsetWidth;
    lens.style.left = (picture.offsetLeft + x - size / 2) + 'px';
    lens.style.top = (picture.offsetTop + y - size / 2) + 'px';
    lens.style.backgroundImage = 'url("' + picture.currentSrc + '")';
    lens.style.backgroundSize = (box.width * ZOOM) + 'px ' + (box.height * ZOOM) + 'px';
    lens.style.backgroundPosition = (size / 2 - x * ZOOM) + 'px ' + (size / 2 - y * ZOOM) + 'px';
  }
  function zoom() {
    if (!picture || !lens) return false;
    zooming = !zooming;
    lens.hidden = !zooming;
    picture.classList.toggle('zooming', zooming);
    place();
    return true;
  }
  if (picture && lens) {
    picture.addEventListener('mousemove', function (e) { at = { x: e.clientX, y: e.clientY }; place(); });
    lens.addEventListener('mousemove', function (e) { at = { x: e.clientX, y: e.clientY }; place(); });
    picture.addEventListener('click', zoom);
    lens.addEventListener('click', zoom);
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    var target = e.target;
    var tag = target && target.tagName;
    if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || (target && target.isContentEditable)) {
      if (e.key === 'Escape') target.blur();
      return;
    }
    var key = e.key;
    var done = false;
    if (key === 'a' || key === 'A') done = press('approve');
    else if (key.length === 1 && key >= '1' && key <= '9') done = reject(Number(key));
    else if (key === 'p' || key === 'P') {
      var plate = byId('plate-input');
      if (plate) { plate.focus(); done = true; }
    }
    else if (key === 'n' || key === 'N' || key === 'ArrowRight') done = follow('next-case');
    else if (key === 'b' || key === 'B' || key === 'ArrowLeft') done = follow('prev-case');
    else if (key === 'z' || key === 'Z') done = zoom();
    else if (key === 'Escape' && zooming) done = zoom();
    if (done) e.preventDefault();
  });
})();
