//! The log pipeline of the loop: service pipes and the kernel log read with a
//! budget, lines into the rings, the `/perm` files and the console queue, and
//! the console written without blocking.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Init {
    pub(super) fn wall(&self) -> Timestamp {
        Timestamp::from_system(runtime::clock::wall_now())
    }

    /// Lines into a ring, its file and (unless it is the kernel's) the console.
    pub(super) fn emit_lines(&mut self, ring: &str, stream: Stream, texts: Vec<String>) {
        self.emit(ring, stream, texts, stream != Stream::Kernel);
    }

    pub(super) fn emit(&mut self, ring: &str, stream: Stream, texts: Vec<String>, mirror: bool) {
        if texts.is_empty() {
            return;
        }
        let lines = self.logs.push(ring, self.wall(), stream, texts);
        if let Some(f) = self.files.get_mut(ring) {
            for l in &lines {
                if !f.write(l) {
                    self.shared.counters.log_write_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !mirror {
            return;
        }
        if let Some(c) = self.console.as_mut() {
            for l in &lines {
                c.queue.push(ring, &l.text);
            }
            self.shared.counters.console_dropped.store(c.queue.dropped(), Ordering::Relaxed);
        }
    }

    /// One line of init's own: into init's log (and the console), and when it
    /// is about a service, into that service's log too.
    pub(super) fn say(&mut self, service: Option<usize>, text: String) {
        let line = match service.and_then(|i| self.specs.get(i)).map(|s| s.name.clone()) {
            Some(name) => {
                // The service's own log gets it too; the console once, from init's.
                self.emit(&name, Stream::Init, vec![text.clone()], false);
                format!("{name}: {text}")
            }
            None => text,
        };
        if self.cfg.mode == Mode::SuperviseOnly {
            eprintln!("init: {line}");
        }
        self.emit_lines("init", Stream::Init, vec![line]);
    }

    pub(super) fn add_pipe(&mut self, registry: &Registry, ring: &str, stream: Stream, fd: OwnedFd) {
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE) {
            self.say(None, format!("cannot watch {ring}'s {}: {e}", stream.name()));
            return;
        }
        self.pipes.insert(token, Pipe { ring: ring.to_owned(), stream, fd, splitter: LineSplitter::default() });
        // Output may already be waiting; edge-triggered readiness would not say so.
        self.busy.insert(token);
    }

    /// Reads a pipe up to the budget; returns whether more may be waiting.
    pub(super) fn read_pipe(&mut self, registry: &Registry, token: Token) -> bool {
        let Some(pipe) = self.pipes.get_mut(&token) else { return false };
        let mut buf = [0u8; 16 * 1024];
        let mut lines = Vec::new();
        let mut total = 0;
        let mut eof = false;
        let mut more = false;
        loop {
            match rustix::io::read(&pipe.fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    pipe.splitter.push(&buf[..n], &mut lines);
                    total += n;
                    if total >= PIPE_BUDGET {
                        more = true;
                        break;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let (ring, stream) = (pipe.ring.clone(), pipe.stream);
        if eof {
            pipe.splitter.finish(&mut lines);
            if let Some(pipe) = self.pipes.remove(&token) {
                let _ = registry.deregister(&mut SourceFd(&pipe.fd.as_raw_fd()));
            }
        }
        self.emit_lines(&ring, stream, lines);
        more && !eof
    }

    pub(super) fn read_kmsg(&mut self) -> bool {
        let Some(fd) = self.kmsg.as_ref() else { return false };
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        let mut more = false;
        loop {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::AGAIN) => break,
                Ok(n) => {
                    if let Some(line) = crate::kmsg::format_record(&buf[..n]) {
                        lines.push(line);
                    }
                    if lines.len() >= 256 {
                        more = true;
                        break;
                    }
                }
                // Records were overwritten before we read them: carry on.
                Err(rustix::io::Errno::PIPE | rustix::io::Errno::INTR) => {}
                Err(_) => {
                    self.kmsg = None;
                    break;
                }
            }
        }
        self.emit_lines("kernel", Stream::Kernel, lines);
        more
    }

    pub(super) fn drain_busy(&mut self, registry: &Registry) {
        let busy: Vec<Token> = std::mem::take(&mut self.busy).into_iter().collect();
        for token in busy {
            let more = match token {
                KMSG_TOKEN => self.read_kmsg(),
                t => self.read_pipe(registry, t),
            };
            if more {
                self.busy.insert(token);
            }
        }
    }

    pub(super) fn flush_console(&mut self, cx: &mut Context<'_>) {
        let Some(c) = self.console.as_mut() else { return };
        while !c.queue.is_empty() {
            match rustix::io::write(&c.fd, c.queue.pending()) {
                Ok(n) => c.queue.consumed(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // Full (EAGAIN) or gone: try again shortly; the queue stays bounded.
                    if !self.console_timer {
                        self.console_timer = true;
                        cx.add_timer(cx.now() + CONSOLE_RETRY, TIMER_CONSOLE);
                    }
                    break;
                }
            }
        }
    }

    pub(super) fn console_input(&mut self, cx: &mut Context<'_>) {
        let Some(rescue) = self.rescue.as_mut() else { return };
        let outcome = rescue.on_input(cx.now());
        for text in outcome.say {
            self.say(None, text);
        }
        if let Some(err) = outcome.spawn_error {
            self.say(None, format!("rescue shell: {err}"));
        }
    }
}
