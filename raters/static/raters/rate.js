// Rating page: two videos on one clock, JUICE questions, keyboard first. No dependencies.
// The page comes without a task: the script claims one (POST to the API's next), so that
// showing or reloading the page claims nothing; a reload gets the same open task back.
(function () {
  "use strict";
  var root = document.getElementById("rate");
  if (!root) return;

  var BREAK_AFTER_MS = 20 * 60 * 1000;
  var left = document.getElementById("video-left");
  var right = document.getElementById("video-right");
  var players = document.getElementById("players");
  var form = document.getElementById("judgment-form");
  var submit = document.getElementById("submit");
  var errors = document.getElementById("form-errors");
  var status = document.getElementById("watch-status");
  var scrub = document.getElementById("scrub");
  var clock = document.getElementById("clock");
  var breakBox = document.getElementById("break");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  // Until the first claim answers: no token (nothing to submit or keep a draft for).
  var task = { token: "", fps: 8, min_watch_ms: 0 };
  var s = {};
  var rowCount = 0;
  var sessionStart = Date.now();
  var breakShownAt = sessionStart;

  // --- the one clock ------------------------------------------------------------------------
  // Presentation control: the pair is shown over the shorter duration, the longer
  // clip centre-cropped in time, and both in the same centre-cropped aspect ratio.
  function master() {
    return (right.duration || 0) < (left.duration || 0) ? right : left;
  }
  function follower() {
    return master() === left ? right : left;
  }
  function duration() {
    return Math.min(left.duration || 0, right.duration || 0);
  }
  function offset(video) {
    return Math.max(0, ((video.duration || 0) - duration()) / 2);
  }
  function now() {
    return Math.max(0, master().currentTime - offset(master()));
  }
  function frameTime() {
    return 1 / (task.fps || 8);
  }

  function reset() {
    s = {
      ready: { left: false, right: false },
      played: { left: false, right: false },
      playing: false,
      loop: s.loop === undefined ? true : s.loop,
      rate: s.rate || 1,
      watchMs: 0,
      replays: 0,
      seeks: 0,
      lastTick: 0,
      started: Date.now(),
      submitting: false,
    };
  }

  function setBoth(t) {
    left.currentTime = t + offset(left);
    right.currentTime = t + offset(right);
  }

  function play() {
    if (!s.ready.left || !s.ready.right) return;
    if (master().ended || now() >= duration() - 0.001) setBoth(0);
    s.playing = true;
    s.lastTick = performance.now();
    left.playbackRate = right.playbackRate = s.rate;
    var a = left.play();
    var b = right.play();
    if (a && a.catch) a.catch(function () {});
    if (b && b.catch) b.catch(function () {});
    document.getElementById("play-label").textContent = "Pause";
  }

  function pause() {
    s.playing = false;
    left.pause();
    right.pause();
    // Park both on the clock's instant so they show the same moment.
    setBoth(Math.min(now(), duration()));
    document.getElementById("play-label").textContent = "Play";
  }

  function seek(t) {
    t = Math.max(0, Math.min(t, duration()));
    s.seeks += 1;
    setBoth(t);
    show();
  }

  function step(direction) {
    if (s.playing) pause();
    var fps = task.fps || 8;
    var frames = Math.max(1, Math.round(duration() * fps));
    var frame = Math.floor(now() * fps + 1e-3) + direction;
    frame = Math.max(0, Math.min(frames - 1, frame));
    // Aim at the middle of the frame: both decoders then land on the same frame.
    seek((frame + 0.5) / fps);
  }

  function show() {
    var d = duration();
    var t = now();
    if (d > 0 && document.activeElement !== scrub) scrub.value = String(Math.round((t / d) * 1000));
    var fps = task.fps || 8;
    var frames = Math.max(1, Math.round(d * fps));
    var frame = Math.min(frames, Math.floor(t * fps + 1e-3) + 1);
    clock.textContent = t.toFixed(2) + " s · frame " + frame + "/" + frames;
  }

  function tick(stamp) {
    if (s.playing) {
      var dt = stamp - s.lastTick;
      if (dt > 0 && dt < 1000) s.watchMs += dt;
      s.lastTick = stamp;
      var m = master();
      var f = follower();
      var target = now() + offset(f);
      if (Math.abs(f.currentTime - target) > frameTime() / 2 && !f.seeking && !m.seeking) {
        f.currentTime = target;
      }
      markPlayed();
      if (submit.disabled && !s.submitting && s.played.left && s.played.right) updateGate();
      show();
    }
    window.requestAnimationFrame(tick);
  }

  function markPlayed() {
    var d = duration();
    if (d <= 0 || (s.played.left && s.played.right)) return;
    var atEnd = master().ended || now() >= d - frameTime() / 2;
    if (atEnd && s.watchMs >= 0.9 * d * 1000) {
      s.played.left = s.played.right = true;
      updateGate();
    }
  }

  function atEnd() {
    markPlayed();
    if (!s.playing) return;
    if (s.loop) {
      s.replays += 1;
      setBoth(0);
      play();
    } else {
      pause();
    }
  }

  function onEnded(event) {
    if (event.target === master()) atEnd();
  }

  function onReady(side) {
    return function () {
      if (s.ready[side]) return;
      s.ready[side] = true;
      if (s.ready.left && s.ready.right) {
        var aspect = Math.min(
          left.videoWidth / left.videoHeight || 1,
          right.videoWidth / right.videoHeight || 1
        );
        players.style.setProperty("--aspect", String(aspect));
        updateGate();
        setBoth(0);
        play();
      }
    };
  }

  // The server's watch minimum (min_watch_ms in the task) is the one rule: Submit unlocks once
  // both clips played through AND that long has been spent playing and since the task loaded
  // (the server checks both: the reported watch time and its own clock).
  function watchedEnough() {
    var need = task.min_watch_ms || 0;
    return s.watchMs >= need && Date.now() - s.started >= need;
  }

  function updateGate() {
    var both = s.played.left && s.played.right;
    var enough = watchedEnough();
    submit.disabled = !both || !enough || s.submitting;
    if (!s.ready.left || !s.ready.right) status.textContent = "Loading both videos…";
    else if (both && enough)
      status.textContent = "Both videos watched: answer both questions and submit.";
    else if (both)
      status.textContent =
        "Keep watching: Submit unlocks after " +
        ((task.min_watch_ms || 0) / 1000).toFixed(1) +
        " s of playing (" +
        (s.watchMs / 1000).toFixed(1) +
        " s so far).";
    else
      status.textContent =
        "Watch both videos to the end once to unlock Submit (left " +
        (s.played.left ? "✓" : "…") +
        ", right " +
        (s.played.right ? "✓" : "…") +
        ").";
  }

  // --- the questions ------------------------------------------------------------------------
  function choose(question, side) {
    var input = form.querySelector("input[name=" + question + "][value=" + side + "]");
    if (!input) return;
    input.checked = true;
    syncReasons(question);
    saveDraft();
  }

  function syncReasons(question) {
    var fieldset = document.getElementById("q-" + question);
    var chosen = form.querySelector("input[name=" + question + "]:checked");
    var tie = chosen && chosen.value === "tie";
    var sideBox = fieldset.querySelector(".side-reasons");
    var tieBox = fieldset.querySelector(".tie-reasons");
    if (!tieBox) return;
    var hide = tie ? sideBox : tieBox;
    sideBox.hidden = !!tie;
    tieBox.hidden = !tie;
    hide.querySelectorAll("input").forEach(function (box) {
      box.checked = false;
    });
  }

  function toggleReason(key) {
    var boxes = form.querySelectorAll("input[type=checkbox][data-key='" + key + "']");
    boxes.forEach(function (box) {
      if (!box.closest(".reasons").hidden) box.checked = !box.checked;
    });
    saveDraft();
  }

  function values(name) {
    return Array.prototype.map.call(
      form.querySelectorAll("input[name=" + name + "]:checked"),
      function (box) {
        return box.value;
      }
    );
  }

  // A reload keeps the answers given so far for this task (the server keeps the task itself).
  function draftKey() {
    return "juice-draft-" + task.token;
  }
  function saveDraft() {
    if (!task.token) return;
    try {
      var draft = {};
      form.querySelectorAll("input[type=radio]:checked, input[type=checkbox]:checked").forEach(
        function (input) {
          draft[input.name + "=" + input.value] = true;
        }
      );
      window.sessionStorage.setItem(draftKey(), JSON.stringify(draft));
    } catch (e) {
      // Storage may be off (private mode): answers are then simply not kept.
    }
  }
  function restoreDraft() {
    var draft;
    try {
      draft = JSON.parse(window.sessionStorage.getItem(draftKey()) || "{}");
    } catch (e) {
      draft = {};
    }
    ["quality", "faithfulness"].forEach(function (question) {
      form.querySelectorAll("input[name=" + question + "]").forEach(function (radio) {
        if (draft[radio.name + "=" + radio.value]) radio.checked = true;
      });
      syncReasons(question);
    });
    form.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      if (draft[box.name + "=" + box.value]) box.checked = true;
    });
  }

  function showErrors(messages) {
    errors.innerHTML = "";
    messages.forEach(function (text) {
      var p = document.createElement("p");
      p.textContent = text;
      errors.appendChild(p);
    });
    errors.hidden = messages.length === 0;
  }

  function flatten(body) {
    var out = [];
    Object.keys(body || {}).forEach(function (field) {
      var value = body[field];
      (Array.isArray(value) ? value : [value]).forEach(function (m) {
        out.push(String(m));
      });
    });
    return out.length ? out : ["Something went wrong; please try again."];
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body ? JSON.stringify(body) : "{}",
    });
  }

  function send(event) {
    if (event) event.preventDefault();
    if (submit.disabled || s.submitting) return;
    s.submitting = true;
    updateGate();
    var body = {
      token: task.token,
      quality: values("quality")[0] || "",
      quality_reasons: values("quality_reasons"),
      faithfulness: values("faithfulness")[0] || "",
      faithfulness_reasons: values("faithfulness_reasons"),
      time_spent_ms: Date.now() - s.started,
      watch_ms: Math.round(s.watchMs),
      replays: s.replays,
      seeks: s.seeks,
      played_through: s.played.left && s.played.right,
    };
    post(root.dataset.submitUrl, body)
      .then(function (response) {
        if (response.status === 200 || response.status === 201) {
          rowCount += 1;
          try {
            window.sessionStorage.removeItem(draftKey());
          } catch (e) {
            // nothing kept, nothing to clear
          }
          return next();
        }
        if (response.status === 403) {
          window.location.reload();
          return null;
        }
        return response.json().then(function (data) {
          showErrors(flatten(data));
        });
      })
      .catch(function () {
        showErrors(["The server could not be reached; your answers are still here."]);
      })
      .then(function () {
        s.submitting = false;
        updateGate();
      });
  }

  function next() {
    return post(root.dataset.nextUrl).then(function (response) {
      if (response.status === 204) {
        window.location.assign(root.dataset.doneUrl);
        return null;
      }
      if (response.status !== 200) {
        window.location.reload();
        return null;
      }
      return response.json().then(function (data) {
        load(data);
        maybeBreak();
      });
    });
  }

  function load(data) {
    task = data;
    pause();
    reset();
    form.reset();
    restoreDraft();
    showErrors([]);
    document.getElementById("token").value = task.token;
    document.getElementById("prompt-text").textContent = task.prompt;
    document.getElementById("progress-done").textContent = String(task.progress.done + 1);
    document.getElementById("progress-total").textContent = String(task.progress.total);
    [
      [left, task.left],
      [right, task.right],
    ].forEach(function (pair) {
      if (pair[1].poster) pair[0].setAttribute("poster", pair[1].poster);
      else pair[0].removeAttribute("poster");
      pair[0].src = pair[1].video;
      pair[0].load();
    });
    updateGate();
    show();
  }

  function maybeBreak() {
    var every = task.break_every || 0;
    var byCount = every > 0 && rowCount > 0 && rowCount % every === 0;
    var byTime = Date.now() - breakShownAt > BREAK_AFTER_MS;
    if (!byCount && !byTime) return;
    breakShownAt = Date.now();
    pause();
    document.getElementById("break-count").textContent = String(rowCount);
    breakBox.hidden = false;
    document.getElementById("break-continue").focus();
  }

  function endBreak() {
    breakBox.hidden = true;
    play();
  }

  // --- flick: both videos in one place, one visible, switched within one screen frame --------
  function flick() {
    var on = players.classList.contains("flick");
    if (!on) {
      players.classList.add("flick");
      players.dataset.show = "left";
    } else {
      players.dataset.show = players.dataset.show === "left" ? "right" : "left";
    }
    document.getElementById("btn-flick").setAttribute("aria-pressed", "true");
  }
  function unflick() {
    players.classList.remove("flick");
    document.getElementById("btn-flick").setAttribute("aria-pressed", "false");
  }

  function toggleLoop() {
    s.loop = !s.loop;
    var button = document.getElementById("btn-loop");
    button.setAttribute("aria-pressed", String(s.loop));
    document.getElementById("loop-label").textContent = s.loop ? "Loop on" : "Loop off";
  }
  function toggleSpeed() {
    s.rate = s.rate === 1 ? 0.5 : 1;
    left.playbackRate = right.playbackRate = s.rate;
    document.getElementById("speed-label").textContent = "Speed " + (s.rate === 1 ? "1" : "0.5") + "×";
  }

  // --- keyboard -----------------------------------------------------------------------------
  var SIDE_KEYS = {
    q: ["quality", "left"],
    w: ["quality", "tie"],
    e: ["quality", "right"],
    a: ["faithfulness", "left"],
    s: ["faithfulness", "tie"],
    d: ["faithfulness", "right"],
  };

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (!breakBox.hidden) {
      if (key === "Enter" || key === "Escape") {
        event.preventDefault();
        endBreak();
      }
      return;
    }
    if (event.target === scrub && (key === "ArrowLeft" || key === "ArrowRight")) event.target.blur();
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (key === " ") {
      event.preventDefault();
      if (s.playing) pause();
      else play();
    } else if (key === "ArrowLeft" || key === "ArrowRight") {
      event.preventDefault();
      var direction = key === "ArrowLeft" ? -1 : 1;
      if (event.shiftKey) seek(now() + direction);
      else step(direction);
    } else if (key === "Home" || key === "0") {
      seek(0);
    } else if (lower === "l") {
      toggleLoop();
    } else if (lower === "v") {
      toggleSpeed();
    } else if (lower === "f") {
      flick();
    } else if (key === "Escape") {
      unflick();
    } else if (SIDE_KEYS[lower]) {
      choose(SIDE_KEYS[lower][0], SIDE_KEYS[lower][1]);
    } else if (/^[1-9]$/.test(key)) {
      toggleReason(key);
    } else if (key === "Enter") {
      event.preventDefault();
      send();
    }
  }

  // --- wiring -------------------------------------------------------------------------------
  reset();
  left.addEventListener("canplay", onReady("left"));
  right.addEventListener("canplay", onReady("right"));
  [left, right].forEach(function (video) {
    video.addEventListener("error", function () {
      status.textContent = "A video could not be loaded. Please reload the page; your task is kept.";
      status.classList.add("error");
    });
  });
  left.addEventListener("ended", onEnded);
  right.addEventListener("ended", onEnded);
  if (left.readyState >= 3) onReady("left")();
  if (right.readyState >= 3) onReady("right")();
  document.addEventListener("keydown", onKey);
  form.addEventListener("submit", send);
  form.addEventListener("change", saveDraft);
  ["quality", "faithfulness"].forEach(function (question) {
    form.querySelectorAll("input[name=" + question + "]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        syncReasons(question);
      });
    });
  });
  document.getElementById("btn-play").addEventListener("click", function () {
    if (s.playing) pause();
    else play();
  });
  document.getElementById("btn-back").addEventListener("click", function () {
    step(-1);
  });
  document.getElementById("btn-fwd").addEventListener("click", function () {
    step(1);
  });
  document.getElementById("btn-loop").addEventListener("click", toggleLoop);
  document.getElementById("btn-speed").addEventListener("click", toggleSpeed);
  document.getElementById("btn-flick").addEventListener("click", function () {
    if (players.classList.contains("flick") && players.dataset.show === "right") unflick();
    else flick();
  });
  document.getElementById("break-continue").addEventListener("click", endBreak);
  scrub.addEventListener("input", function () {
    if (s.playing) pause();
    seek((Number(scrub.value) / 1000) * duration());
  });
  updateGate();
  window.requestAnimationFrame(tick);
  next().catch(function () {
    status.textContent = "The server could not be reached. Please reload the page.";
    status.classList.add("error");
  });
  // Tests and tools read the clock through this, never through the videos' sources.
  window.juicePlayer = {
    play: play,
    pause: pause,
    seek: seek,
    step: step,
    state: function () {
      return s;
    },
  };
})();
